import NIOCore
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
}
