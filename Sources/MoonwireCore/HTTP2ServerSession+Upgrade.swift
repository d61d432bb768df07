// An h2c upgrade on an HTTP2ServerSession (RFC 7540 section 3.2): the request that asked for
// it came as HTTP/1.1 and is answered on stream 1, which nghttp2 opens half-closed (remote)
// as if the client had sent that request's HEADERS with END_STREAM. The client's SETTINGS
// come from its HTTP2-Settings field, not from a frame; the server's own SETTINGS and the
// client's preface are exchanged as on any connection.
import CNGHTTP2

extension HTTP2ServerSession {
    /// Applies the client's SETTINGS payload (base64url-decoded HTTP2-Settings) and opens
    /// stream 1 for the upgraded request, whose answer the caller then submits like any
    /// other. Must come before any byte is received. False, and nothing changed, when the
    /// payload is not `acceptable`.
    func upgrade(settings payload: [UInt8], headRequest: Bool) -> Bool {
        guard Self.acceptable(settings: payload) else { return false }
        let result = payload.withUnsafeBufferPointer {
            nghttp2_session_upgrade2(session, $0.baseAddress, $0.count, headRequest ? 1 : 0, nil)
        }
        guard result == 0 else { return false }
        streams[1] = HTTP2StreamOutbox()
        openRequests += 1
        return true
    }

    /// Whole settings (six bytes each) whose values are in range (RFC 9113 section 6.5.2). A
    /// SETTINGS frame with a value out of range is a connection error; in HTTP2-Settings,
    /// which nghttp2 takes as that frame, it would end the session right after the 101, so
    /// such a request is not upgraded at all (H2CUpgrade).
    static func acceptable(settings payload: [UInt8]) -> Bool {
        guard payload.count % 6 == 0 else { return false }
        for offset in stride(from: 0, to: payload.count, by: 6) {
            let identifier = UInt16(payload[offset]) << 8 | UInt16(payload[offset + 1])
            let value = payload[(offset + 2)..<(offset + 6)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            switch UInt32(identifier) {
            case NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL.rawValue,
                NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue:
                guard value <= 1 else { return false }
            case NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue:
                guard value <= UInt32(Int32.max) else { return false }
            case NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue:
                guard (16_384...16_777_215).contains(value) else { return false }
            default:
                break
            }
        }
        return true
    }
}
