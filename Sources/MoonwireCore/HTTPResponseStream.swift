// A response body written piece by piece, with the connection's back-pressure exposed so a
// producer can wait instead of filling memory when the client reads slowly.
import NIOCore
import NIOHTTP1

/// The body of a streamed response. Used on the connection's event loop only.
public final class HTTPResponseStream {
    private var writeChunk: ((ByteBuffer, (() -> Void)?) -> Void)?
    private var finishBody: ((HTTPHeaders?) -> Void)?
    private var abortBody: (() -> Void)?
    private var checkWritable: (() -> Bool)?
    private var waiters: [() -> Void] = []
    private var closeWatchers: [() -> Void] = []

    /// False once the response ended or the connection is gone.
    public private(set) var isOpen = true

    init() {}

    func attach(
        write: @escaping (ByteBuffer, (() -> Void)?) -> Void, finish: @escaping (HTTPHeaders?) -> Void, abort: @escaping () -> Void,
        isWritable: @escaping () -> Bool
    ) {
        guard isOpen else { return }
        writeChunk = write
        finishBody = finish
        abortBody = abort
        checkWritable = isWritable
    }

    /// Whether the connection can take more without queueing in memory.
    public var isWritable: Bool { isOpen && (checkWritable?() ?? false) }

    /// Sends one piece of the body; ignored once the stream is closed.
    public func write(_ chunk: ByteBuffer) {
        guard isOpen, chunk.readableBytes > 0 else { return }
        writeChunk?(chunk, nil)
    }

    /// Sends one piece of the body and calls `written` once it has left the server's memory
    /// (handed to the socket, or dropped with the connection), so a producer that must not
    /// wait can still count what it has queued. Not called when the stream is closed.
    public func write(_ chunk: ByteBuffer, written: @escaping () -> Void) {
        guard isOpen, let writeChunk else { return }
        writeChunk(chunk, written)
    }

    /// Calls `action` once when the stream closes: finished, aborted, or the client gone.
    public func whenClosed(_ action: @escaping () -> Void) {
        guard isOpen else { return action() }
        closeWatchers.append(action)
    }

    /// Ends the body, with trailer fields when given (a proxied chunked answer's): they reach
    /// HTTP/2 clients and HTTP/1.1 clients of a chunked body. Later writes are ignored.
    public func finish(trailers: HTTPHeaders? = nil) {
        guard isOpen else { return }
        let finish = finishBody
        close()
        finish?(trailers)
    }

    /// Breaks off the body by closing the connection, so the client sees it is incomplete
    /// (the producer failed after the head was sent; a status can no longer say so).
    public func abort() {
        guard isOpen else { return }
        let abort = abortBody
        close()
        abort?()
    }

    /// Calls `action` once the connection is writable again, or closed. A body ended meanwhile
    /// (finished or aborted) drops it uncalled, so that nothing it holds outlives the response.
    public func whenWritable(_ action: @escaping () -> Void) {
        if !isOpen || isWritable { return action() }
        waiters.append(action)
    }

    func becameWritable() {
        let ready = waiters
        waiters = []
        ready.forEach { $0() }
    }

    func connectionClosed() {
        let ready = waiters
        close()
        ready.forEach { $0() }
    }

    private func close() {
        isOpen = false
        writeChunk = nil
        finishBody = nil
        abortBody = nil
        checkWritable = nil
        waiters = []
        let watchers = closeWatchers
        closeWatchers = []
        watchers.forEach { $0() }
    }
}
