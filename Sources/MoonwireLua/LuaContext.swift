// Where Lua code runs. Every call into Lua records the event it runs for, and the event's
// context decides which Lua-facing functions may run there, as lua-nginx-module's phase masks
// do: `moonwire.options` belongs to loading, `res:write` to a request handler, `moonwire.sleep`
// to calls that can wait. A function called elsewhere raises an error that names both places.

/// A set of places Lua code can run in.
struct LuaContext: OptionSet, Sendable {
    let rawValue: UInt16

    /// The scripts' top-level code, while a generation loads.
    static let load = LuaContext(rawValue: 1 << 0)
    /// The handlers of an HTTP request: OnBeforeCommand, the authentication hooks, routes,
    /// OnCommandGet and the rest.
    static let request = LuaContext(rawValue: 1 << 1)
    /// OnBeforeCommand, the authentication hooks and OnHandshake of a WebSocket upgrade
    /// request, before the 101.
    static let handshake = LuaContext(rawValue: 1 << 2)
    /// The events of an open WebSocket (OnConnect ... OnDisconnect).
    static let webSocket = LuaContext(rawValue: 1 << 3)
    /// Events of a connection before HTTP: OnTCPConnect, OnError, the TLS events and
    /// OnUnknownProtocol.
    static let connection = LuaContext(rawValue: 1 << 4)
    /// OnBeforeBinding, OnStartup, OnShutdown and the cluster link's events.
    static let lifecycle = LuaContext(rawValue: 1 << 5)
    /// OnException.
    static let exception = LuaContext(rawValue: 1 << 6)
    /// OnHTTP2BeforeAsyncRequest, which picks where a request runs.
    static let dispatch = LuaContext(rawValue: 1 << 7)
    /// A function of moonwire.timer or moonwire.every.
    static let timer = LuaContext(rawValue: 1 << 8)
    /// OnSessionEnd, which runs on its own (after the answer, or when the sweep expires a
    /// session).
    static let session = LuaContext(rawValue: 1 << 9)

    /// Every context a server runs code in after loading.
    static let running: LuaContext = [.request, .handshake, .webSocket, .connection, .lifecycle, .exception, .dispatch, .timer, .session]
    /// Where calls may wait (each event says whether it can: see `LuaEvent.canWait`).
    static let waiting: LuaContext = running.subtracting(.dispatch)
    /// Everywhere.
    static let anywhere: LuaContext = running.union(.load)

    /// The contexts in the order the reference lists them, with their names in messages.
    static let named: [(LuaContext, String)] = [
        (.load, "while the scripts load"),
        (.request, "in a request handler"),
        (.handshake, "in a WebSocket handshake"),
        (.webSocket, "in a WebSocket event"),
        (.connection, "in a connection event"),
        (.lifecycle, "in a lifecycle event"),
        (.exception, "in OnException"),
        (.dispatch, "in OnHTTP2BeforeAsyncRequest"),
        (.timer, "in a timer"),
        (.session, "in OnSessionEnd"),
    ]

    /// "in a request handler or in a WebSocket handshake", for the contexts in the set.
    var description: String {
        let names = Self.named.filter { contains($0.0) }.map(\.1)
        guard names.count > 1 else { return names.first ?? "nowhere" }
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }
}

/// What a call into Lua runs for: the event whose function it calls, which gives its context
/// and the name errors and logs use.
enum LuaEvent: Sendable, Equatable {
    case load
    case onBeforeCommand, route, onCommandGet, onCommandOther, onHTTPRequest
    /// The authentication hooks of a request, and of an upgrade request (before OnHandshake).
    case onAuthentication, onUnknownAuthentication, onUpgradeAuthentication, onUpgradeUnknownAuthentication
    /// OnBeforeCommand of an upgrade request, which runs before OnHandshake.
    case onBeforeUpgrade, onHandshake
    case onConnect, onMessage, onBinary, onFragmented, onBeforeHeartBeat, onAsynchronous, onDisconnect
    case onTCPConnect, onError, onSSLALPNSelect, onSSLVerifyPeer, onUnknownProtocol
    case onBeforeBinding, onStartup, onShutdown
    /// The cluster's link to Redis changed (ClusterBus).
    case onLoadBalancerConnect, onLoadBalancerDisconnect, onLoadBalancerError
    case onException
    case onHTTP2BeforeAsyncRequest
    case timer
    /// The session events: the first three are stages of a request, OnSessionEnd runs alone.
    case onInvalidSession, onCreateSession, onSessionStart, onSessionEnd
    /// The stages of a multipart upload (LuaVM+Uploads.swift).
    case onUploadBeforeCreate, onUploadReadInput, onUploadBeforeSaveFile, onUploadAfterSaveFile
    /// The forwarding hooks (LuaProxy.swift).
    case onBeforeForwardHTTP, onAfterForwardHTTP

    /// Where the event's code runs.
    var context: LuaContext {
        switch self {
        case .load: .load
        case .onBeforeCommand, .route, .onCommandGet, .onCommandOther, .onHTTPRequest: .request
        case .onAuthentication, .onUnknownAuthentication: .request
        case .onBeforeUpgrade, .onHandshake, .onUpgradeAuthentication, .onUpgradeUnknownAuthentication: .handshake
        case .onConnect, .onMessage, .onBinary, .onFragmented, .onBeforeHeartBeat, .onAsynchronous, .onDisconnect: .webSocket
        case .onTCPConnect, .onError, .onSSLALPNSelect, .onSSLVerifyPeer, .onUnknownProtocol: .connection
        case .onBeforeBinding, .onStartup, .onShutdown: .lifecycle
        case .onLoadBalancerConnect, .onLoadBalancerDisconnect, .onLoadBalancerError: .lifecycle
        case .onException: .exception
        case .onHTTP2BeforeAsyncRequest: .dispatch
        case .timer: .timer
        case .onInvalidSession, .onCreateSession, .onSessionStart: .request
        case .onUploadBeforeCreate, .onUploadReadInput, .onUploadBeforeSaveFile, .onUploadAfterSaveFile: .request
        case .onBeforeForwardHTTP, .onAfterForwardHTTP: .request
        case .onSessionEnd: .session
        }
    }

    /// Whether the event's call may wait. Those whose answer the server needs at once may not:
    /// the scripts' load (every loop loads at once), OnSSLALPNSelect (the TLS library asks
    /// synchronously), OnHTTP2BeforeAsyncRequest (it decides where the request runs) and
    /// OnShutdown (the loops are stopping).
    var canWait: Bool {
        switch self {
        case .load, .onSSLALPNSelect, .onHTTP2BeforeAsyncRequest, .onShutdown: false
        default: true
        }
    }

    /// The event as scripts know it ("OnMessage"), or what runs ("a route's handler").
    var name: String {
        switch self {
        case .load: "the scripts' top level"
        case .onBeforeCommand, .onBeforeUpgrade: "OnBeforeCommand"
        case .route: "a route's handler"
        case .onCommandGet: "OnCommandGet"
        case .onCommandOther: "OnCommandOther"
        case .onHTTPRequest: "OnHTTPRequest"
        case .onAuthentication, .onUpgradeAuthentication: "OnAuthentication"
        case .onUnknownAuthentication, .onUpgradeUnknownAuthentication: "OnUnknownAuthentication"
        case .onHandshake: "OnHandshake"
        case .onConnect: "OnConnect"
        case .onMessage: "OnMessage"
        case .onBinary: "OnBinary"
        case .onFragmented: "OnFragmented"
        case .onBeforeHeartBeat: "OnBeforeHeartBeat"
        case .onAsynchronous: "OnAsynchronous"
        case .onDisconnect: "OnDisconnect"
        case .onTCPConnect: "OnTCPConnect"
        case .onError: "OnError"
        case .onSSLALPNSelect: "OnSSLALPNSelect"
        case .onSSLVerifyPeer: "OnSSLVerifyPeer"
        case .onBeforeBinding: "OnBeforeBinding"
        case .onUnknownProtocol: "OnUnknownProtocol"
        case .onStartup: "OnStartup"
        case .onShutdown: "OnShutdown"
        case .onLoadBalancerConnect: "OnLoadBalancerConnect"
        case .onLoadBalancerDisconnect: "OnLoadBalancerDisconnect"
        case .onLoadBalancerError: "OnLoadBalancerError"
        case .onException: "OnException"
        case .onHTTP2BeforeAsyncRequest: "OnHTTP2BeforeAsyncRequest"
        case .timer: "a timer"
        case .onInvalidSession: "OnInvalidSession"
        case .onCreateSession: "OnCreateSession"
        case .onSessionStart: "OnSessionStart"
        case .onSessionEnd: "OnSessionEnd"
        case .onBeforeForwardHTTP: "OnBeforeForwardHTTP"
        case .onAfterForwardHTTP: "OnAfterForwardHTTP"
        case .onUploadBeforeCreate: "OnHTTPUploadBeforeCreatePostStream"
        case .onUploadReadInput: "OnHTTPUploadReadInput"
        case .onUploadBeforeSaveFile: "OnHTTPUploadBeforeSaveFile"
        case .onUploadAfterSaveFile: "OnHTTPUploadAfterSaveFile"
        }
    }
}
