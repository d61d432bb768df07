// One request being handled in Lua: the coroutine it runs in and the response it builds.
import CLua
import MoonwireCore
import MoonwireRouting
import NIOCore
import NIOHTTP1

/// The state of one HTTP request between its arrival and its answer.
final class LuaHandlerCall {
    let id: Int
    let request: HTTPRequest
    let responder: HTTPResponder
    /// The coroutine running the handlers, anchored in the registry by `threadRef`.
    let thread: LuaThread
    let threadRef: Int32

    var status = 200
    /// Run through the dispatcher, whose result says whether OnBeforeCommand answered.
    var dispatched = false
    var headers = HTTPHeaders()
    var body = ByteBuffer()
    var file: String?
    /// A handler sent something or set the status; otherwise static files get their turn.
    var answered = false
    /// Captures of the route that matched (req.params).
    var params = RouteParams()
    /// The static root of the virtual host that matched, when it has its own.
    var staticRoot: String?
    /// The timer of a `moonwire.sleep` in progress.
    var sleeping: Scheduled<Void>?
    /// Set by whatever suspends the coroutine on purpose (a sleep, a full send buffer).
    var isWaiting = false
    /// The streamed body, once `res:write` started one.
    var stream: HTTPResponseStream?
    /// The answer went out (`res:finish`) before the handler returned.
    var responded = false
    /// The wall-clock limit, armed when the call first waits (a call that never waits is
    /// bounded by its instruction budget alone, so most calls never pay for a timer).
    var deadline: Scheduled<Void>?
    /// When the call started, or last sent a piece of a streamed body: the timeout counts
    /// from here, so a stream that keeps moving is never cut.
    var lastProgress = NIODeadline.now()
    /// Instructions the call may still run.
    var instructionsLeft: Int
    /// Set by a limit the server enforced, so the error is reported as that fault.
    var fault: LuaScriptError.Kind?

    init(id: Int, request: HTTPRequest, responder: HTTPResponder, thread: LuaThread, threadRef: Int32, instructions: Int) {
        self.id = id
        self.request = request
        self.responder = responder
        self.thread = thread
        self.threadRef = threadRef
        self.instructionsLeft = instructions
    }

    /// The response the handlers built.
    var response: HTTPResponse {
        var headers = self.headers
        if file == nil, body.readableBytes > 0, !headers.contains(name: "content-type") {
            // Shared when it is the only field: no array is built per response.
            if headers.isEmpty {
                headers = Self.plainTextHeaders
            } else {
                headers.add(name: "content-type", value: "text/plain; charset=utf-8")
            }
        }
        return HTTPResponse(status: status, headers: headers, body: file.map { .file($0) } ?? .bytes(body))
    }

    private static let plainTextHeaders: HTTPHeaders = ["content-type": "text/plain; charset=utf-8"]

    /// Whether the method is one OnCommandGet handles.
    var isGetLike: Bool {
        request.method == "GET" || request.method == "HEAD" || request.method == "POST"
    }
}
