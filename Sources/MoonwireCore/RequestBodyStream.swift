// A request body handed over as it arrives, instead of whole: the exchange handler appends the
// chunks the client sends, the delegate takes them one by one (`read`), and the handler stops
// reading the socket while more than `highWater` bytes wait untaken. That is the back-pressure
// that keeps a 2 GiB upload, or a body that a handler reads slowly, from filling memory: the
// client's sends are held back by TCP (HTTP/1.1) or by the stream's flow-control window
// (HTTP/2, whose window NIO opens only as the stream channel reads).
import NIOCore

/// One request's body, chunk by chunk. Confined to the connection's loop; `Sendable` only so a
/// request (which is) can carry it.
public final class RequestBodyStream: @unchecked Sendable {
    /// Why a body ended before its end.
    public enum Failure: Error, Equatable, Sendable {
        /// The client went away (or reset the stream) in the middle of the body.
        case clientLeft
        /// The body passed the limit the delegate set for it; the server answered 413.
        case tooLarge(Int)
    }

    /// Untaken bytes above which the socket is not read.
    public static let highWater = 256 * 1024

    public let eventLoop: EventLoop
    /// The most bytes this body may have; more is answered 413.
    public let limit: Int
    private var chunks = CircularBuffer<ByteBuffer>()
    private var pending = 0
    private var ended = false
    private var failure: Failure?
    private var reader: EventLoopPromise<ByteBuffer?>?
    /// The `maxBytes` of the read that waits.
    private var readerLimit = Int.max
    /// Called when the untaken bytes fell to `highWater` or below: reading may go on.
    var drained: (() -> Void)?

    init(eventLoop: EventLoop, limit: Int) {
        self.eventLoop = eventLoop
        self.limit = limit
    }

    /// Whether the socket should wait until the delegate takes what arrived.
    var isFull: Bool { pending > Self.highWater }

    /// The next chunk, at most `maxBytes` long; nil at the end of the body; fails when the body
    /// broke off (`Failure`). One read at a time.
    public func read(maxBytes: Int = .max) -> EventLoopFuture<ByteBuffer?> {
        precondition(reader == nil, "one read at a time")
        if let failure { return eventLoop.makeFailedFuture(failure) }
        if let chunk = take(maxBytes) { return eventLoop.makeSucceededFuture(chunk) }
        if ended { return eventLoop.makeSucceededFuture(nil) }
        let promise = eventLoop.makePromise(of: ByteBuffer?.self)
        reader = promise
        readerLimit = maxBytes
        return promise.futureResult
    }

    private func take(_ maxBytes: Int) -> ByteBuffer? {
        guard var first = chunks.first else { return nil }
        let chunk: ByteBuffer
        if first.readableBytes > maxBytes {
            chunk = first.readSlice(length: maxBytes)!
            chunks[chunks.startIndex] = first
        } else {
            chunk = chunks.removeFirst()
        }
        let wasFull = isFull
        pending -= chunk.readableBytes
        if wasFull, !isFull { drained?() }
        return chunk
    }

    // MARK: The exchange handler's side

    func append(_ chunk: ByteBuffer) {
        guard failure == nil, chunk.readableBytes > 0 else { return }
        chunks.append(chunk)
        pending += chunk.readableBytes
        if let reader, let chunk = take(readerLimit) {
            self.reader = nil
            reader.succeed(chunk)
        }
    }

    func finish() {
        ended = true
        if chunks.isEmpty, let reader {
            self.reader = nil
            reader.succeed(nil)
        }
    }

    func fail(_ failure: Failure) {
        guard self.failure == nil, !(ended && chunks.isEmpty) else { return }
        self.failure = failure
        chunks.removeAll()
        pending = 0
        if let reader {
            self.reader = nil
            reader.fail(failure)
        }
    }
}
