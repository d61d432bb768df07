import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireLua

/// The kept request is handed out only for the same URL and method, never for a request with
/// headers or a body, and its bytes are those a fresh request would have.
final class LuaRecentPooledRequestTests: XCTestCase {
    private func options(_ url: String, _ method: HTTPMethod = .GET, headers: HTTPHeaders = [:], body: String? = nil) -> LuaHTTPRequestOptions {
        LuaHTTPRequestOptions(
            url: url, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }, tls: nil)
    }

    private func head(_ made: (OutboundURL, OutboundHTTP1Pool.Request)?) -> String {
        made.map { String(buffer: $0.1.bytes) } ?? "none"
    }

    func testTheSameRequestIsKeptAndAnotherIsMadeAfresh() {
        var recent = LuaRecentPooledRequest()
        let first = options("http://127.0.0.1:8080/a").pooled(recent: &recent)
        XCTAssertEqual(head(first), "GET /a HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n")
        XCTAssertEqual(head(options("http://127.0.0.1:8080/a").pooled(recent: &recent)), head(first))
        XCTAssertEqual(head(options("http://127.0.0.1:8080/b").pooled(recent: &recent)), "GET /b HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n")
        let headRequest = options("http://127.0.0.1:8080/b", .HEAD).pooled(recent: &recent)
        XCTAssertEqual(head(headRequest), "HEAD /b HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n")
        XCTAssertEqual(headRequest?.1.isHead, true)
    }

    func testAGetWithoutOptionsFindsTheKeptRequestByTheBytesOfItsURL() {
        var recent = LuaRecentPooledRequest()
        let L = luaL_newstate()!
        defer { lua_close(L) }
        for url in ["http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b", "http://127.0.0.1:8080/ab"] {
            _ = lua_pushstring(L, url)
        }
        XCTAssertNil(recent.lookup(L, url: 1))
        let made = options("http://127.0.0.1:8080/a").pooled(recent: &recent)
        let found = recent.lookup(L, url: 1)
        XCTAssertEqual(found?.url, "http://127.0.0.1:8080/a")
        XCTAssertEqual(head(found.map { ($0.target, $0.request) }), head(made))
        XCTAssertNil(recent.lookup(L, url: 2))
        XCTAssertNil(recent.lookup(L, url: 3))
        _ = options("http://127.0.0.1:8080/a", .HEAD).pooled(recent: &recent)
        XCTAssertNil(recent.lookup(L, url: 1))
    }

    func testRequestsWithHeadersOrABodyAreNeitherKeptNorLookedUp() {
        var recent = LuaRecentPooledRequest()
        _ = options("http://127.0.0.1:8080/a").pooled(recent: &recent)
        let withHeader = options("http://127.0.0.1:8080/a", headers: ["x-a": "1"]).pooled(recent: &recent)
        XCTAssertEqual(head(withHeader), "GET /a HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-a: 1\r\n\r\n")
        let withBody = options("http://127.0.0.1:8080/a", .POST, body: "hi").pooled(recent: &recent)
        XCTAssertEqual(head(withBody), "POST /a HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 2\r\n\r\nhi")
        XCTAssertEqual(head(options("http://127.0.0.1:8080/a").pooled(recent: &recent)), "GET /a HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n")
    }
}
