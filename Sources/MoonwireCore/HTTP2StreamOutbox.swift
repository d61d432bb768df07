// The answer side of one stream of an HTTP2ServerSession: the content queued by the handler
// and not yet framed, which nghttp2 pulls through the stream's data provider as the
// client's windows open. The session frames from here, so what is queued is the caller's to
// bound (`HTTP2ServerSession.queuedBytes(stream:)`).
import NIOCore
import NIOHTTP1

/// One stream's answer state; a class because nghttp2's read callback updates it in place.
final class HTTP2StreamOutbox {
    /// Content not yet framed, in order.
    var chunks = CircularBuffer<ByteBuffer>()
    var queuedBytes = 0
    /// The answer head was submitted.
    var responded = false
    /// The head was submitted with a data provider: content follows through `chunks`.
    var streaming = false
    /// The handler gave the last of the content (or the trailers).
    var ended = false
    /// Trailers to send once `chunks` is empty.
    var trailers: HTTPHeaders?
    /// The provider answered NGHTTP2_ERR_DEFERRED: more content must resume it.
    var deferred = false

    /// Copies queued bytes to fill `destination` as far as they go; returns how many.
    func take(into destination: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < destination.count, let first = chunks.first {
            let count = min(first.readableBytes, destination.count - written)
            first.withUnsafeReadableBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: destination[written..<(written + count)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[..<count]))
            }
            written += count
            if count == first.readableBytes {
                chunks.removeFirst()
            } else {
                chunks[chunks.startIndex].moveReaderIndex(forwardBy: count)
            }
        }
        queuedBytes -= written
        return written
    }

    /// Drops what was queued and takes no more: the stream was reset or closed.
    func drop() {
        chunks.removeAll()
        queuedBytes = 0
        trailers = nil
        responded = true
        ended = true
    }
}
