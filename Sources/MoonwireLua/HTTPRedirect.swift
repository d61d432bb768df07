// Following a redirect of moonwire.http. AsyncHTTPClient follows redirects only as its client's
// configuration says, the same for every request, while `follow_redirects` is per request and
// the server has one client (one pool): the binding follows them itself with this rule, which is
// the fetch standard's (as AsyncHTTPClient's own RedirectState and curl apply it).
import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// The request that follows a redirect.
enum HTTPRedirect {
    /// The request `head` (an answer to `request`) redirects to, or nil when it is no redirect
    /// to follow: not 301, 302, 303, 307 or 308, no Location, or one that is not an http(s) URL.
    /// 303 (and 301 or 302 after a POST) continues as a GET without the body; 307 and 308 keep
    /// the method and body. Credentials and the Host header stay behind when the origin changes.
    static func next(after head: HTTPResponseHead, to request: HTTPClient.Request) -> HTTPClient.Request? {
        guard [301, 302, 303, 307, 308].contains(head.status.code),
            let location = head.headers.first(name: "location"),
            let target = URL(string: location, relativeTo: request.url)?.absoluteURL,
            let scheme = target.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else { return nil }
        var method = request.method
        var body = request.body
        var headers = request.headers
        let becomesGET =
            (head.status.code == 303 && method != .HEAD) || ((head.status.code == 301 || head.status.code == 302) && method == .POST)
        if becomesGET {
            method = .GET
            body = nil
            for name in ["content-length", "content-type", "transfer-encoding"] { headers.remove(name: name) }
        }
        if !sameOrigin(request.url, target) {
            for name in ["authorization", "proxy-authorization", "cookie", "host"] { headers.remove(name: name) }
        }
        return try? HTTPClient.Request(
            url: target, method: method, headers: headers, body: body, tlsConfiguration: request.tlsConfiguration)
    }

    private static func sameOrigin(_ a: URL, _ b: URL) -> Bool {
        a.scheme?.lowercased() == b.scheme?.lowercased() && a.host?.lowercased() == b.host?.lowercased() && a.port == b.port
    }
}
