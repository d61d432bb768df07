// Server push on the nghttp2 engine (RFC 9113 section 8.4): a client stream promises its
// preload links through the connection's HTTP2ServerSession, and each promised stream is
// opened at once as a request of its own, a GET that ends with its head, served by an
// exchange handler like any client stream. No ordering is needed here, unlike on the nio
// engine (HTTP2PushConnection): nghttp2 numbers a promised stream when it is promised, frames
// the PUSH_PROMISE in the order of submission, before an answer HEADERS submitted after it,
// and holds the promised stream's answer until its PUSH_PROMISE is out.
import CNGHTTP2

extension HTTP2SessionStream: HTTP2PushPromiser {
    /// Whether this stream's requests push their preload links: `http2.push` is on, the client
    /// allows push (SETTINGS_ENABLE_PUSH, sent before its first request), and the stream is
    /// the client's (odd): a pushed stream promises nothing (RFC 9113 section 8.4).
    func pushes(_ settings: HTTP2Settings) -> Bool {
        guard settings.push, id & 1 == 1, let connection else { return false }
        return nghttp2_session_get_remote_settings(connection.session.session, NGHTTP2_SETTINGS_ENABLE_PUSH) == 1
    }

    func promise(_ paths: [String], for request: HTTPRequest) {
        guard !paths.isEmpty, let connection else { return }
        for pushed in HTTP2PushedRequest.requests(for: paths, linkedFrom: request) {
            guard
                let promised = connection.session.push(
                    onStream: id, method: "GET", path: pushed.path, authority: pushed.authority, scheme: pushed.scheme,
                    headers: pushed.headers)
            else { return }
            connection.open(
                HTTP2RequestHead(
                    stream: promised, method: "GET", scheme: pushed.scheme, authority: pushed.authority, path: pushed.path,
                    fields: pushed.headers, endStream: true))
        }
    }
}
