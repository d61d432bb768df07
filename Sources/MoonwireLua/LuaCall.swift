// One call into Lua: the coroutine it runs in, the event it runs for, and, for a request, the
// response it builds. Every entry into Lua is one (LuaVM+Door.swift). A call whose coroutine
// returned normally waits in its VM's pool for the next entry, which saves allocating and
// freeing both each time.
import CLua
import MoonwireCore
import MoonwireRouting
import NIOCore
import NIOHTTP1

/// The state of one call between its entry and its end: for a request, from its arrival to
/// its answer, through every stage of its handlers. Nothing but its VM keeps a call past its
/// end (timers and streams find calls by id, and `req` and `res` hold only the id), which is
/// what makes reusing it safe.
final class LuaCall {
    /// What a call's outcome goes on to: the stages of a request, those of a WebSocket
    /// handshake, or the caller of a single event, who reads the outcome itself.
    enum Flow {
        case request, handshake, event
    }

    /// What the routes say about a request.
    enum RouteTarget {
        /// No route matched: the event handlers answer.
        case none
        /// The handler of the route that matched (a registry reference).
        case handler(Int32)
        /// The path matched only under other methods: these, for the Allow field.
        case allow(String)
        /// A route that forwards to upstream servers (`moonwire.proxy`).
        case proxy(LuaProxyRoute)

        var forwards: Bool {
            if case .proxy = self { return true }
            return false
        }
    }

    /// Set by the VM's call table: the id while the call lives, 0 otherwise, and the slot the
    /// call object keeps in the table.
    var id = 0
    var slot = 0
    /// nil while the call waits in the pool, so that an idle call holds no request.
    private(set) var request: HTTPRequest!
    private(set) var responder: HTTPResponder!
    /// The coroutine running the handlers, anchored in the registry by `threadRef`.
    let thread: LuaThread
    let threadRef: Int32

    /// The event whose function runs now, and its context, which the Lua-facing functions
    /// check (set by `enter`).
    private(set) var event = LuaEvent.load
    private(set) var context = LuaContext.load
    /// Set when the call starts; see `Flow`.
    var flow = Flow.event

    // Everything below is reset by `reset()`: a reused call starts as a new one.

    var status = 200
    /// The route a request matched, found before its first stage.
    var route = RouteTarget.none
    /// The answer a WebSocket handshake waits for.
    var handshake: EventLoopPromise<WebSocketHandshakeDecision>?
    var headers = HTTPHeaders()
    var body = ByteBuffer()
    var file: String?
    /// A handler sent something or set the status; otherwise static files get their turn.
    var answered = false
    /// Captures of the route that matched (req.params).
    var params = RouteParams()
    /// The static root of the virtual host that matched, when it has its own.
    var staticRoot: String?
    /// Cancels what the call waits for (a sleep's timer, an outbound request) when the call
    /// ends before the answer.
    var cancelWait: (() -> Void)?
    /// Set by whatever suspends the coroutine on purpose (a sleep, a full send buffer).
    var isWaiting = false
    /// The coroutine yielded for a wait and has not been resumed since.
    var isSuspended = false
    /// How many waits the call has begun (see `LuaWaiter.serial`); never reset, so that a
    /// reused call's serials go on from where they were.
    var waits = 0
    /// The WebSocket whose event the call runs: its next events wait for this one's end.
    var socket: WebSocketConnection?
    /// What an event's caller does with its outcome, when the event waited before it ended.
    var completion: LuaEventCompletion?
    /// The call is a thread moonwire.spawn started (in its spawner's event).
    var isThread = false
    /// The streamed body, once `res:write` started one.
    var stream: HTTPResponseStream?
    /// The event stream over `stream`, once `res:sse` started one.
    var eventStream: ServerSentEventStream?
    /// The answer went out (`res:finish`) before the handler returned.
    var responded = false
    /// The wall-clock limit, armed when the call first waits (a call that never waits is
    /// bounded by its instruction budget alone, so most calls never pay for a timer).
    var deadline: NIODeadline?
    /// When the request arrived, or the call last sent a piece of a streamed body: the timeout
    /// counts from here, so a stream that keeps moving is never cut. Zero for an event until it
    /// first waits (reading the clock for every WebSocket message would cost more than the
    /// CPU a call may spend before its first wait, which the budget bounds anyway).
    var lastProgress = NIODeadline.uptimeNanoseconds(0)
    /// Instructions the call may still run.
    var instructionsLeft = 0
    /// Set by a limit the server enforced, so the error is reported as that fault.
    var fault: LuaScriptError.Kind?
    /// Who authentication admitted (req.user), and the info of the API key that did
    /// (req.api_key).
    var user: String?
    var apiKey: SharedValue?
    /// The user of Basic credentials while OnAuthentication decides; req.user once it admits.
    var claimedUser: String?
    /// The session stage ran (it runs once, before the first handler).
    var sessionResolved = false
    /// The request's session; req.session's table once a handler read it (its data is saved
    /// at the end); a session a handler destroyed, for OnSessionEnd after the answer.
    var session: LuaCallSession?
    var sessionRef = LUA_NOREF
    var endedSession: SessionStore.Session?
    /// The request's multipart upload, once its stage started.
    var upload: LuaUpload?
    /// OnBeforeForwardHTTP has run for this request (its nil goes on to the routes).
    var forwardAsked = false
    /// OnAfterForwardHTTP's answer to the forward waiting for it; `forwardFailed`: it runs
    /// for a failure (502, 504) rather than the upstream's head.
    var forwardDecision: ((ProxyDecision) -> Void)?
    var forwardFailed = false

    init(thread: LuaThread, threadRef: Int32) {
        self.thread = thread
        self.threadRef = threadRef
    }

    /// Starts a call, new or one that `reset()` emptied, with the budget of one call.
    func begin(_ flow: Flow, instructions: Int) {
        self.flow = flow
        instructionsLeft = instructions
    }

    /// Gives the call the request it handles, and the responder of its answer (none for a
    /// handshake, which answers through its promise).
    func attach(_ request: HTTPRequest, responder: HTTPResponder?) {
        self.request = request
        self.responder = responder
        lastProgress = .now()
    }

    /// Marks the stage about to run: its event, and so its context.
    func enter(_ event: LuaEvent) {
        self.event = event
        context = event.context
    }

    /// Drops what the request left, for the call's reuse (`begin` sets the rest). Fields are
    /// cleared only when set: most requests set few, and each clear is a release.
    func reset() {
        if request != nil {
            request = nil
            responder = nil
        }
        status = 200
        if case .none = route {} else { route = .none }
        if handshake != nil { handshake = nil }
        if !headers.isEmpty { headers = HTTPHeaders() }
        // A small body's storage is kept for the next response: once the answer has let go of
        // it, writing there allocates nothing (and if it has not, the write copies first).
        if body.capacity <= Self.keptBodyCapacity {
            body.clear()
        } else {
            body = ByteBuffer()
        }
        if file != nil { file = nil }
        answered = false
        if !params.isEmpty { params = RouteParams() }
        if staticRoot != nil { staticRoot = nil }
        if cancelWait != nil { cancelWait = nil }
        isWaiting = false
        isSuspended = false
        if socket != nil { socket = nil }
        if completion != nil { completion = nil }
        isThread = false
        if stream != nil { stream = nil }
        if eventStream != nil { eventStream = nil }
        responded = false
        if deadline != nil { deadline = nil }
        lastProgress = .uptimeNanoseconds(0)
        fault = nil
        if user != nil { user = nil }
        if apiKey != nil { apiKey = nil }
        if claimedUser != nil { claimedUser = nil }
        sessionResolved = false
        if session != nil { session = nil }
        if sessionRef != LUA_NOREF {
            luaL_unref(thread, mw_registryindex(), sessionRef)
            sessionRef = LUA_NOREF
        }
        if endedSession != nil { endedSession = nil }
        if upload != nil { upload = nil }
        forwardAsked = false
        if forwardDecision != nil { forwardDecision = nil }
        forwardFailed = false
    }

    /// The response the handlers built.
    var response: HTTPResponse {
        HTTPResponse(status: status, headers: responseHeaders, body: file.map { .file($0) } ?? .bytes(body))
    }

    /// The headers set, with a text content type for a body that has none.
    private var responseHeaders: HTTPHeaders {
        guard file == nil, body.readableBytes > 0 else { return headers }
        // Shared when it is the only field: no array is built per response.
        if headers.isEmpty { return Self.plainTextHeaders }
        guard !headers.contains(name: "content-type") else { return headers }
        var headers = self.headers
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        return headers
    }

    /// The largest body storage a pooled call keeps (16 pooled calls keep at most 256 KiB).
    private static let keptBodyCapacity = 16 * 1024

    private static let plainTextHeaders: HTTPHeaders = ["content-type": "text/plain; charset=utf-8"]

    /// Whether the method is one OnCommandGet handles.
    var isGetLike: Bool {
        request.method == "GET" || request.method == "HEAD" || request.method == "POST"
    }
}
