import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// What both HTTP/2 engines promise for a request's preload links.
final class HTTP2PushedRequestTests: XCTestCase {
    private static func request(_ uri: String, _ headers: HTTPHeaders) -> HTTPRequest {
        HTTPRequest(
            method: "GET", uri: uri, version: "2", scheme: "https", headers: headers, body: ByteBuffer(),
            connection: ConnectionInfo(remoteIP: "127.0.0.1", remotePort: 1, localPort: 2))!
    }

    func testOriginPathsOtherThanTheRequestsOwnAreGETsWithTheClientsFields() {
        let linking = Self.request(
            "/index.html",
            [
                "host": "example.com", "user-agent": "test/1", "accept": "text/html", "cookie": "a=1",
                "accept-language": "fr", "accept-encoding": "gzip",
            ])
        let pushed = HTTP2PushedRequest.requests(
            for: ["/style.css", "/index.html", "https://other.example/x.js", "/app.js"], linkedFrom: linking)
        XCTAssertEqual(pushed.map(\.path), ["/style.css", "/app.js"])
        for request in pushed {
            XCTAssertEqual(request.scheme, "https")
            XCTAssertEqual(request.authority, "example.com")
            XCTAssertEqual(
                request.headers.map { "\($0.name): \($0.value)" },
                ["user-agent: test/1", "accept-encoding: gzip", "accept-language: fr", "cookie: a=1"])
        }
    }

    func testNoLinksNoRequests() {
        XCTAssertTrue(HTTP2PushedRequest.requests(for: [], linkedFrom: Self.request("/", ["host": "h"])).isEmpty)
        XCTAssertTrue(HTTP2PushedRequest.requests(for: ["/"], linkedFrom: Self.request("/", ["host": "h"])).isEmpty)
    }
}
