// A server's WebSocket frames as bytes (RFC 6455 section 5.2). Why not NIOWebSocket's
// WebSocketFrameEncoder: it writes a frame's header as a buffer and a write of its own unless the
// payload has room in front of it and nothing else holds it, which a payload handed down from a
// script or shared by a broadcast never has; so every frame was two writes, each a pending write
// in the channel (about 4,100 instructions a frame). A server's frames are not masked, so the
// header is 2 to 10 bytes: a small payload is copied behind it into one buffer, one write. The
// frames are our own small value, not NIO's WebSocketFrame, which keeps its payload in an
// object of its own: an allocation per frame sent.
import NIOCore
import NIOWebSocket

/// A frame the server sends: whole (FIN set; the server never fragments), unmasked.
struct OutgoingWebSocketFrame {
    var opcode: WebSocketOpcode
    /// RSV1: the payload is compressed (permessage-deflate).
    var compressed = false
    var payload: ByteBuffer
}

/// The bytes of a frame the server sends.
enum WebSocketFrameBytes {
    /// Payloads up to this size are copied next to their header; a larger one keeps its buffer,
    /// with the header in front as a buffer of its own.
    static let copyLimit = 4096

    /// The buffers that carry `frame`, in order: one, or the header and then the payload.
    static func encode(_ frame: OutgoingWebSocketFrame, allocator: ByteBufferAllocator) -> (ByteBuffer, ByteBuffer?) {
        let length = frame.payload.readableBytes
        let headerSize = length < 126 ? 2 : length <= Int(UInt16.max) ? 4 : 10
        if length <= copyLimit {
            var bytes = allocator.buffer(capacity: headerSize + length)
            writeHeader(of: frame, length: length, into: &bytes)
            bytes.writeImmutableBuffer(frame.payload)
            return (bytes, nil)
        }
        var header = allocator.buffer(capacity: headerSize)
        writeHeader(of: frame, length: length, into: &header)
        return (header, frame.payload)
    }

    /// FIN, RSV1 (permessage-deflate), the opcode, and the payload length in its shortest form.
    static func writeHeader(of frame: OutgoingWebSocketFrame, length: Int, into buffer: inout ByteBuffer) {
        var first = UInt8(webSocketOpcode: frame.opcode) | 0x80
        if frame.compressed { first |= 0x40 }
        buffer.writeInteger(first)
        switch length {
        case ..<126:
            buffer.writeInteger(UInt8(length))
        case ...Int(UInt16.max):
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }
}
