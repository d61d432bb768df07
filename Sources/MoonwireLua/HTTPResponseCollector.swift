// The response delegate of moonwire.http: keeps the head and gathers the body of one outbound
// response, refusing more than a cap. AsyncHTTPClient's own `ResponseAccumulator` does the
// same with a lock around its state and a history of redirects; ours runs on the one loop the
// request was made from (so it needs no lock) and refuses an oversized body as soon as its
// Content-Length announces it. It knows nothing of Lua, but lives here rather than in Core:
// only the Lua layer makes outbound requests, and Core (which `moonwire-constant` links alone)
// stays free of AsyncHTTPClient.
import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// Gathers one response in memory, up to `maxBodySize` bytes of body.
///
/// `@unchecked Sendable`: AsyncHTTPClient calls a delegate only on its task's event loop, and
/// the state is touched nowhere else.
final class HTTPResponseCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    /// What the collector gives back: the head as it arrived and the whole body.
    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: ByteBuffer
    }

    /// The body was (or was announced to be) longer than the cap.
    struct BodyTooLarge: Error, CustomStringConvertible {
        let limit: Int
        var description: String { "response body larger than \(limit) bytes" }
    }

    private let maxBodySize: Int
    /// A HEAD's Content-Length announces the size of a body that never comes.
    private let isHead: Bool
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?

    init(maxBodySize: Int, isHead: Bool) {
        self.maxBodySize = maxBodySize
        self.isHead = isHead
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        if !isHead, let announced = head.headers.first(name: "content-length").flatMap(Int.init), announced > maxBodySize {
            return task.eventLoop.makeFailedFuture(BodyTooLarge(limit: maxBodySize))
        }
        self.head = head
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        guard (body?.readableBytes ?? 0) + part.readableBytes <= maxBodySize else {
            body = nil
            return task.eventLoop.makeFailedFuture(BodyTooLarge(limit: maxBodySize))
        }
        if body == nil {
            // Most answers come in one part: keep it as it came, without a copy.
            body = part
        } else {
            var part = part
            body!.writeBuffer(&part)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Response>, _ error: Error) {
        body = nil
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        // AsyncHTTPClient hands the head before it finishes; without one the answer was cut off.
        guard let head else { throw HTTPClientError.remoteConnectionClosed }
        return Response(head: head, body: body ?? ByteBuffer())
    }
}
