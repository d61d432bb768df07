import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// Plain http URLs are taken apart; anything unusual is left to the general client.
final class OutboundURLTests: XCTestCase {
    func testPlainForms() throws {
        let url = try XCTUnwrap(OutboundURL("http://127.0.0.1:8080/a/b?x=1"))
        XCTAssertEqual([url.host, String(url.port), url.target, url.authority], ["127.0.0.1", "8080", "/a/b?x=1", "127.0.0.1:8080"])
        XCTAssertEqual(OutboundURL("HTTP://example.com")?.target, "/")
        XCTAssertEqual(OutboundURL("http://example.com?q")?.target, "/?q")
        XCTAssertEqual(OutboundURL("http://example.com")?.port, 80)
        let v6 = try XCTUnwrap(OutboundURL("http://[::1]:81/x"))
        XCTAssertEqual([v6.host, String(v6.port), v6.authority], ["::1", "81", "[::1]:81"])
    }

    func testUnusualFormsAreLeftToTheGeneralClient() {
        for url in [
            "http://user:pw@example.com/", "http://example.com/a b", "http://example.com/#f",
            "http://:80/", "http://example.com:0/", "http://example.com:99999/", "http://example.com:x/", "http://",
            "http://[::1/", "ftp://example.com/", "http://exa%6dple.com/", "https:/x.com", "httpx://x.com",
        ] {
            XCTAssertNil(OutboundURL(url), url)
        }
    }

    func testHTTPSURLsDoTLSOnTheirOwnPort() throws {
        let url = try XCTUnwrap(OutboundURL("https://example.com/x"))
        XCTAssertTrue(url.isSecure)
        XCTAssertEqual(url.port, 443)
        XCTAssertEqual(url.authority, "example.com")
        XCTAssertEqual(OutboundURL("HTTPS://[::1]:8443")?.port, 8443)
        XCTAssertEqual(OutboundURL("http://example.com")?.isSecure, false)
    }

    /// Two URLs parsed apart are equal when their parts are, and the pool files them together.
    func testURLsCompareByTheirParts() throws {
        let url = try XCTUnwrap(OutboundURL("http://example.com:8080/a?b"))
        XCTAssertEqual(url, OutboundURL("http://example.com:8080/a?b"))
        XCTAssertNotEqual(url, OutboundURL("http://example.com:8080/a?c"))
        XCTAssertNotEqual(url, OutboundURL("https://example.com:8080/a?b"))
        XCTAssertEqual(url.poolKey, "example.com|8080")
        XCTAssertEqual(url.authority, "example.com:8080")
    }

    func testRequestBytes() throws {
        let url = try XCTUnwrap(OutboundURL("http://h:81/p"))
        let get = url.request(method: "GET", headers: ["Accept": "x"], body: nil)
        XCTAssertEqual(String(buffer: get), "GET /p HTTP/1.1\r\nhost: h:81\r\nAccept: x\r\n\r\n")
        let post = url.request(method: "POST", headers: ["Host": "other", "Content-Length": "99"], body: ByteBuffer(string: "abc"))
        XCTAssertEqual(String(buffer: post), "POST /p HTTP/1.1\r\nHost: other\r\ncontent-length: 3\r\n\r\nabc")
    }
}
