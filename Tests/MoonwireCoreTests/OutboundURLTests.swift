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
            "https://example.com/", "http://user:pw@example.com/", "http://example.com/a b", "http://example.com/#f",
            "http://:80/", "http://example.com:0/", "http://example.com:99999/", "http://example.com:x/", "http://",
            "http://[::1/", "ftp://example.com/", "http://exa%6dple.com/",
        ] {
            XCTAssertNil(OutboundURL(url), url)
        }
    }

    func testRequestBytes() throws {
        let url = try XCTUnwrap(OutboundURL("http://h:81/p"))
        let get = url.request(method: "GET", headers: ["Accept": "x"], body: nil)
        XCTAssertEqual(String(buffer: get), "GET /p HTTP/1.1\r\nhost: h:81\r\nAccept: x\r\n\r\n")
        let post = url.request(method: "POST", headers: ["Host": "other", "Content-Length": "99"], body: ByteBuffer(string: "abc"))
        XCTAssertEqual(String(buffer: post), "POST /p HTTP/1.1\r\nHost: other\r\ncontent-length: 3\r\n\r\nabc")
    }
}
