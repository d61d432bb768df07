// Reads the frames a WebSocket client sends (RFC 6455 section 5.2): a frame's header as soon as
// its last byte arrives, then its payload in pieces, each as soon as it arrives. It only reads;
// whether a frame is legal (masking, reserved bits, opcodes, control frame sizes, lengths) is
// WebSocketStateMachine's decision, made on the header before any of the payload is taken.
//
// Why not NIOWebSocket's WebSocketFrameDecoder: it hands over whole frames only, holding a
// frame's payload (up to the largest message) until its last byte is there. Invalid UTF-8 in the
// middle of a frame could then only be failed once the whole frame had arrived, not as soon as
// the bytes that make it invalid do (RFC 6455 section 8.1; Autobahn cases 6.4.3 and 6.4.4), and a
// frame on its way would be memory that neither the message size check nor the server's budget
// of partial messages sees. Here the payload goes straight into the message being assembled,
// where both are checked. Frames are written by WebSocketFrameBytes.
import NIOCore
import NIOWebSocket

/// The header of a frame as the client sent it.
struct WebSocketFrameHeader: Equatable {
    var fin: Bool
    var rsv1: Bool
    var rsv2: Bool
    var rsv3: Bool
    var opcode: WebSocketOpcode
    /// The masking key, its first byte in the most significant bits; nil when the client did
    /// not mask the frame (a violation the state machine reports).
    var maskKey: UInt32?
    /// The payload length as sent; RFC 6455 allows 63 bits, the state machine limits it.
    var length: UInt64
}

/// A piece of a frame's payload, still masked; whoever copies it out unmasks it on the way,
/// so the payload is copied once.
struct WebSocketPayloadChunk {
    /// The bytes as received, masked.
    var bytes: ByteBuffer
    var maskKey: UInt32?
    /// Where in the frame's payload the first byte is, modulo 4 (which byte of the key it takes).
    var maskOffset: Int

    /// Appends the unmasked bytes to `target`.
    func unmask(into target: inout ByteBuffer) {
        let count = bytes.readableBytes
        guard count > 0 else { return }
        guard let maskKey else {
            var bytes = bytes
            target.writeBuffer(&bytes)
            return
        }
        let pattern = Self.pattern(maskKey, offset: maskOffset)
        target.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { output in
            bytes.withUnsafeReadableBytes { input in Self.xor(input, pattern, into: output) }
            return count
        }
    }

    /// The unmasked bytes in a buffer of their own.
    func unmasked(allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: bytes.readableBytes)
        unmask(into: &buffer)
        return buffer
    }

    /// Eight bytes of the key in memory order, starting at `offset`.
    private static func pattern(_ key: UInt32, offset: Int) -> UInt64 {
        var pattern: UInt64 = 0
        withUnsafeMutableBytes(of: &pattern) { bytes in
            for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: key >> (24 - 8 * ((index + offset) & 3))) }
        }
        return pattern
    }

    /// XORs `input` with the repeating key eight bytes at a time: NIO's byte-by-byte loop
    /// costs more than the rest of an echo.
    private static func xor(_ input: UnsafeRawBufferPointer, _ pattern: UInt64, into output: UnsafeMutableRawBufferPointer) {
        let count = input.count
        var index = 0
        while index + 8 <= count {
            output.storeBytes(of: input.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ pattern, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        withUnsafeBytes(of: pattern) { key in
            while index < count {
                output[index] = input[index] ^ key[index & 7]
                index += 1
            }
        }
    }
}

/// Splits the byte stream of a connection into frame headers and payload pieces. A value type
/// used on the connection's loop only.
struct WebSocketFrameParser {
    /// What the bytes held.
    enum Event {
        /// A frame's header; its payload follows as `payload` events (at least one, even when
        /// empty, the last with `frameEnd` set).
        case header(WebSocketFrameHeader)
        case payload(WebSocketPayloadChunk, frameEnd: Bool)
    }

    private enum State {
        case header
        case payload(remaining: UInt64, maskKey: UInt32?, offset: Int)
    }

    private var state = State.header

    /// The next event the bytes at `buffer`'s reader index make, consuming them; nil when more
    /// bytes are needed. A header is taken whole or not at all (it is at most 14 bytes).
    mutating func next(_ buffer: inout ByteBuffer) -> Event? {
        switch state {
        case .header:
            guard let (header, size) = Self.header(in: buffer) else { return nil }
            buffer.moveReaderIndex(forwardBy: size)
            state = .payload(remaining: header.length, maskKey: header.maskKey, offset: 0)
            return .header(header)
        case .payload(let remaining, let maskKey, let offset):
            let available = UInt64(buffer.readableBytes)
            guard available > 0 || remaining == 0 else { return nil }
            let take = min(remaining, available)
            let bytes = buffer.readSlice(length: Int(take))!
            let left = remaining - take
            state = left == 0 ? .header : .payload(remaining: left, maskKey: maskKey, offset: (offset + Int(take)) & 3)
            return .payload(WebSocketPayloadChunk(bytes: bytes, maskKey: maskKey, maskOffset: offset), frameEnd: left == 0)
        }
    }

    /// The header at the reader index and its size in bytes, or nil if not all of it is there.
    private static func header(in buffer: ByteBuffer) -> (WebSocketFrameHeader, Int)? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self), let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        var size = 2
        var length = UInt64(second & 0x7F)
        if length == 126 {
            guard let word = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            length = UInt64(word)
            size += 2
        } else if length == 127 {
            guard let word = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            length = word
            size += 8
        }
        var maskKey: UInt32?
        if second & 0x80 != 0 {
            guard let key = buffer.getInteger(at: start + size, as: UInt32.self) else { return nil }
            maskKey = key
            size += 4
        }
        let header = WebSocketFrameHeader(
            fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, rsv2: first & 0x20 != 0, rsv3: first & 0x10 != 0,
            opcode: WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!, maskKey: maskKey, length: length)
        return (header, size)
    }
}
