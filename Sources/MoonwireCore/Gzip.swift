// gzip (RFC 1952) through the system zlib, for compressed responses.
import CZlib
import NIOCore

/// One-shot gzip compression of a whole body.
enum Gzip {
    /// Compresses `input`; nil if zlib fails (the caller then sends the body as it is).
    static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 5, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer?
    {
        var stream = z_stream()
        // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
        guard mw_deflateInit2(&stream, level, 15 + 16, 8) == Z_OK else { return nil }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = allocator.buffer(capacity: bound)
        let status = output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target -> Int in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            stream.next_out = target.bindMemory(to: Bytef.self).baseAddress
            stream.avail_out = uInt(target.count)
            let result = deflate(&stream, Z_FINISH)
            return result == Z_STREAM_END ? target.count - Int(stream.avail_out) : 0
        }
        return status > 0 ? output : nil
    }
}
