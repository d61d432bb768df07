// Answering a request on another event loop than the connection's: CPU-heavy handlers run
// on worker VMs (OnHTTP2BeforeAsyncRequest) while the connection stays on its own loop.
import NIOCore
import NIOHTTP1

/// A request's responder, handed to a worker loop. Everything the worker answers is carried
/// back to the connection's loop in order.
public struct HTTPResponderRelay: Sendable {
    private let origin: NIOLoopBound<HTTPResponder>

    /// Wraps a responder; call on the connection's loop.
    public init(_ responder: HTTPResponder, on loop: EventLoop) {
        origin = NIOLoopBound(responder, eventLoop: loop)
    }

    /// The responder the worker answers through; call it on the worker's loop, once.
    public func makeResponder() -> HTTPResponder {
        let origin = self.origin
        let loop = origin.eventLoop
        return HTTPResponder { answer in
            switch answer {
            case .response(let response):
                loop.execute { origin.value.respond(response) }
            case .staticFile(let extraHeaders, let root):
                loop.execute { origin.value.respondWithStaticFile(extraHeaders: extraHeaders, root: root) }
            case .stream(let stream, let status, let headers):
                Self.relay(stream, status: status, headers: headers, to: origin)
            case .informational(let status, let headers):
                loop.execute { origin.value.informational(status: status, headers: headers) }
            }
        }
    }

    /// Mirrors a stream the worker writes onto a stream on the connection's loop. The worker
    /// side always looks writable: what it writes waits in the connection loop's queue.
    private static func relay(
        _ stream: HTTPResponseStream, status: Int, headers: HTTPHeaders, to origin: NIOLoopBound<HTTPResponder>
    ) {
        let loop = origin.eventLoop
        let target = NIOLoopBoundBox<HTTPResponseStream?>.makeEmptyBox(valueType: HTTPResponseStream.self, eventLoop: loop)
        loop.execute { target.value = origin.value.startStream(status: status, headers: headers) }
        stream.attach(
            write: { chunk, written in
                loop.execute { target.value?.write(chunk) }
                written?()
            },
            finish: { trailers in loop.execute { target.value?.finish(trailers: trailers) } },
            abort: { loop.execute { target.value?.abort() } },
            isWritable: { true })
    }
}
