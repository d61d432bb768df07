// The graceful stop of an HTTP2ServerSession as RFC 9113 section 6.8 describes it: a first
// GOAWAY names the highest stream identifier, so that streams the client is opening as it
// arrives are still served, and a PING measures the round trip; once the PING comes back (or
// the caller stops waiting), the second GOAWAY names the last stream the server will answer.
// A single GOAWAY would refuse, unprocessed, the requests already in flight towards the server.
import CNGHTTP2

extension HTTP2ServerSession {
    /// Where a graceful stop stands.
    enum Shutdown {
        case none, noticeSent, done
    }

    /// Sends the first GOAWAY and the PING; `finishShutdown` sends the second.
    func beginShutdown() {
        guard case .none = shutdown else { return }
        shutdown = .noticeSent
        nghttp2_submit_shutdown_notice(session)
        nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// The second GOAWAY, with the last stream processed; called when the PING comes back, or
    /// by the caller once it has waited long enough.
    func finishShutdown() {
        guard case .noticeSent = shutdown else { return }
        shutdown = .done
        goAway(error: NGHTTP2_NO_ERROR.rawValue)
    }
}
