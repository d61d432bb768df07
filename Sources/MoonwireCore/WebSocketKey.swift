// The Sec-WebSocket-Key check NIO's upgrader leaves out: it requires the field, but RFC 6455
// section 4.2.1 also asks for a base64-encoded 16-byte nonce, and a server that answers 101 to
// anything else tells a broken or hostile client that it spoke WebSocket.

/// Validation of a handshake's `Sec-WebSocket-Key`.
enum WebSocketKey {
    /// Whether `value` is the base64 encoding of 16 bytes: 22 characters of the base64
    /// alphabet and the padding "==".
    static func isValid(_ value: String) -> Bool {
        let bytes = value.utf8
        guard bytes.count == 24, bytes.suffix(2).elementsEqual("==".utf8) else { return false }
        return bytes.prefix(22).allSatisfy(isBase64)
    }

    private static func isBase64(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
    }
}
