// The event functions a loaded script tree defines, looked up once per generation: no event
// costs a global lookup when it happens, and a script's metatable on _G (a "strict" module
// that raises on unknown names) is never run by the server.
import CLua

/// Registry references to the scripts' event functions (LUA_NOREF when absent).
struct LuaEventRefs {
    var onBeforeCommand: Int32 = LUA_NOREF
    /// OnCommandGet, else OnHTTPRequest: for GET, HEAD and POST.
    var onCommandGet: (LuaEvent, Int32) = (.onCommandGet, LUA_NOREF)
    /// OnCommandOther, else OnHTTPRequest: for the other methods.
    var onCommandOther: (LuaEvent, Int32) = (.onCommandOther, LUA_NOREF)
    var onAuthentication: Int32 = LUA_NOREF
    var onUnknownAuthentication: Int32 = LUA_NOREF
    var onHandshake: Int32 = LUA_NOREF
    var onConnect: Int32 = LUA_NOREF
    var onMessage: Int32 = LUA_NOREF
    var onBinary: Int32 = LUA_NOREF
    var onFragmented: Int32 = LUA_NOREF
    var onBeforeHeartBeat: Int32 = LUA_NOREF
    var onAsynchronous: Int32 = LUA_NOREF
    var onDisconnect: Int32 = LUA_NOREF
    var onBeforeBinding: Int32 = LUA_NOREF
    var onStartup: Int32 = LUA_NOREF
    var onShutdown: Int32 = LUA_NOREF
    var onLoadBalancerConnect: Int32 = LUA_NOREF
    var onLoadBalancerDisconnect: Int32 = LUA_NOREF
    var onLoadBalancerError: Int32 = LUA_NOREF
    var onTCPConnect: Int32 = LUA_NOREF
    var onError: Int32 = LUA_NOREF
    var onException: Int32 = LUA_NOREF
    var onALPNSelect: Int32 = LUA_NOREF
    var onVerifyPeer: Int32 = LUA_NOREF
    var onUnknownProtocol: Int32 = LUA_NOREF
    var onBeforeAsyncRequest: Int32 = LUA_NOREF
    var onInvalidSession: Int32 = LUA_NOREF
    var onCreateSession: Int32 = LUA_NOREF
    var onSessionStart: Int32 = LUA_NOREF
    var onSessionEnd: Int32 = LUA_NOREF
    var onUploadBeforeCreate: Int32 = LUA_NOREF
    var onUploadReadInput: Int32 = LUA_NOREF
    var onUploadBeforeSaveFile: Int32 = LUA_NOREF
    var onUploadAfterSaveFile: Int32 = LUA_NOREF
    var onBeforeForwardHTTP: Int32 = LUA_NOREF
    var onAfterForwardHTTP: Int32 = LUA_NOREF
    /// Whether the scripts have a WebSocket endpoint: an event that opens connections or
    /// receives messages. Without one, upgrade requests are ordinary requests.
    private(set) var acceptsWebSockets = false

    init() {}

    /// Looks the events up among the globals the scripts left (without metamethods).
    init(globalsOf L: LuaThread) {
        mw_pushglobaltable(L)
        defer { mw_pop(L, 1) }
        func reference(_ name: String) -> Int32 {
            guard L.rawField(-1, name) == LUA_TFUNCTION else {
                mw_pop(L, 1)
                return LUA_NOREF
            }
            return luaL_ref(L, mw_registryindex())
        }
        onBeforeCommand = reference("OnBeforeCommand")
        let onHTTPRequest = reference("OnHTTPRequest")
        onCommandGet = Self.either((.onCommandGet, reference("OnCommandGet")), or: (.onHTTPRequest, onHTTPRequest))
        onCommandOther = Self.either((.onCommandOther, reference("OnCommandOther")), or: (.onHTTPRequest, onHTTPRequest))
        onAuthentication = reference("OnAuthentication")
        onUnknownAuthentication = reference("OnUnknownAuthentication")
        onHandshake = reference("OnHandshake")
        onConnect = reference("OnConnect")
        onMessage = reference("OnMessage")
        onBinary = reference("OnBinary")
        onFragmented = reference("OnFragmented")
        onBeforeHeartBeat = reference("OnBeforeHeartBeat")
        onAsynchronous = reference("OnAsynchronous")
        onDisconnect = reference("OnDisconnect")
        onBeforeBinding = reference("OnBeforeBinding")
        onStartup = reference("OnStartup")
        onShutdown = reference("OnShutdown")
        onLoadBalancerConnect = reference("OnLoadBalancerConnect")
        onLoadBalancerDisconnect = reference("OnLoadBalancerDisconnect")
        onLoadBalancerError = reference("OnLoadBalancerError")
        onTCPConnect = reference("OnTCPConnect")
        onError = reference("OnError")
        onException = reference("OnException")
        onALPNSelect = reference("OnSSLALPNSelect")
        onVerifyPeer = reference("OnSSLVerifyPeer")
        onUnknownProtocol = reference("OnUnknownProtocol")
        onBeforeAsyncRequest = reference("OnHTTP2BeforeAsyncRequest")
        onInvalidSession = reference("OnInvalidSession")
        onCreateSession = reference("OnCreateSession")
        onSessionStart = reference("OnSessionStart")
        onSessionEnd = reference("OnSessionEnd")
        onUploadBeforeCreate = reference("OnHTTPUploadBeforeCreatePostStream")
        onUploadReadInput = reference("OnHTTPUploadReadInput")
        onUploadBeforeSaveFile = reference("OnHTTPUploadBeforeSaveFile")
        onUploadAfterSaveFile = reference("OnHTTPUploadAfterSaveFile")
        onBeforeForwardHTTP = reference("OnBeforeForwardHTTP")
        onAfterForwardHTTP = reference("OnAfterForwardHTTP")
        acceptsWebSockets = [onConnect, onMessage, onBinary, onFragmented].contains { $0 != LUA_NOREF }
    }

    private static func either(_ first: (LuaEvent, Int32), or second: (LuaEvent, Int32)) -> (LuaEvent, Int32) {
        first.1 != LUA_NOREF ? first : second
    }
}
