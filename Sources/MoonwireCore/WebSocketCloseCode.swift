// Close codes a peer may send (RFC 6455 section 7.4 and the IANA registry).

enum WebSocketCloseCode {
    static let normal: UInt16 = 1000
    static let goingAway: UInt16 = 1001
    static let protocolError: UInt16 = 1002
    static let invalidData: UInt16 = 1007
    static let policyViolation: UInt16 = 1008
    static let tooBig: UInt16 = 1009
    static let internalError: UInt16 = 1011
    /// Reported when the connection ended without a close frame (never sent on the wire).
    static let abnormal: UInt16 = 1006
    /// Reported when a close frame carried no code (never sent on the wire).
    static let noStatus: UInt16 = 1005

    /// Whether a peer may put `code` in a close frame.
    static func isValidReceived(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011: return true
        case 3000...4999: return true
        default: return false
        }
    }
}
