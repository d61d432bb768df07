// The sizes of the buffers a connection reads into, chosen as NIO's
// AdaptiveRecvByteBufferAllocator chooses them (double after a read that filled the buffer,
// halve after two reads that filled less than half), from a smaller first size and in a
// smaller value. NIO keeps a channel's sizer as `any RecvByteBufferAllocator`, and its
// adaptive one (five words) does not fit in an existential's three inline words: it is boxed
// on the heap, one box per connection from its first read on. This one fits inline.
//
// The first size is memory every open connection holds, idle or not: NIO's pool of read
// buffers keeps a connection's first buffer for its whole life. NIO's default starts at
// 2 KiB; a request head or a WebSocket handshake mostly fits in 256 bytes, and a connection
// that reads more grows its buffer as before.
import NIOCore

/// A RecvByteBufferAllocator of 256 bytes at first, 64 to 64 KiB, stored inline.
struct ReceiveBufferSizes: RecvByteBufferAllocator {
    static let minimum = 64
    static let initial = 256
    static let maximum = 64 * 1024

    private var next = UInt32(Self.initial)
    /// The last read filled less than half: the next such read halves the size.
    private var decreaseNow = false

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: Int(next))
    }

    func nextBufferSize() -> Int? { Int(next) }

    mutating func record(actualReadBytes: Int) -> Bool {
        let size = Int(next)
        if actualReadBytes <= size / 2, size / 2 >= Self.minimum {
            if decreaseNow { next /= 2 }
            decreaseNow.toggle()
            return false
        }
        decreaseNow = false
        guard actualReadBytes >= size, size * 2 <= Self.maximum else { return false }
        next *= 2
        return true
    }
}
