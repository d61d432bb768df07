import NIOCore
import NIOEmbedded
import NIOWebSocket

/// Frames as a client sends them, masked unless a test says otherwise, for the tests that feed
/// a WebSocket connection or its state machine.
extension WebSocketFrame {
    private static let clientKey = WebSocketMaskingKey([0x12, 0x34, 0x56, 0x78])!

    static func client(
        _ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true, rsv1: Bool = false, rsv2: Bool = false,
        rsv3: Bool = false, masked: Bool = true
    ) -> WebSocketFrame {
        var data = ByteBuffer(bytes: bytes)
        if masked { data.webSocketMask(clientKey) }
        return WebSocketFrame(
            fin: fin, rsv1: rsv1, rsv2: rsv2, rsv3: rsv3, opcode: opcode, maskKey: masked ? clientKey : nil, data: data)
    }

    static func client(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true) -> WebSocketFrame {
        client(opcode, Array(text.utf8), fin: fin)
    }

    /// A close frame with `code` (none when nil) and `reason`.
    static func clientClose(_ code: UInt16?, _ reason: [UInt8] = []) -> WebSocketFrame {
        let bytes = code.map { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } ?? []
        return client(.connectionClose, bytes + reason)
    }

    /// The frame as it goes on the wire: header, masking key, payload (masked already).
    var wire: ByteBuffer {
        var buffer = ByteBuffer()
        var first = UInt8(webSocketOpcode: opcode)
        if fin { first |= 0x80 }
        if rsv1 { first |= 0x40 }
        if rsv2 { first |= 0x20 }
        if rsv3 { first |= 0x10 }
        buffer.writeInteger(first)
        let mask: UInt8 = maskKey == nil ? 0 : 0x80
        let length = data.readableBytes
        if length < 126 {
            buffer.writeInteger(UInt8(length) | mask)
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(126 | mask)
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(127 | mask)
            buffer.writeInteger(UInt64(length))
        }
        if let maskKey { buffer.writeBytes(maskKey) }
        var data = self.data
        buffer.writeBuffer(&data)
        return buffer
    }
}

extension EmbeddedChannel {
    /// The opcodes of the frames the server wrote since the last call (its bytes parsed back:
    /// unmasked frames whose length is in its shortest form; the tests' payloads are small).
    func serverOpcodesWritten() throws -> [WebSocketOpcode] {
        var bytes = ByteBuffer()
        while case .byteBuffer(var part)? = try readOutbound(as: IOData.self) { bytes.writeBuffer(&part) }
        var opcodes: [WebSocketOpcode] = []
        while let first = bytes.readInteger(as: UInt8.self), let second = bytes.readInteger(as: UInt8.self) {
            let length = second == 126 ? Int(bytes.readInteger(as: UInt16.self) ?? 0) : Int(second)
            opcodes.append(WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!)
            bytes.moveReaderIndex(forwardBy: length)
        }
        return opcodes
    }
}
