import XCTest

@testable import MoonwireCore

final class RequestTargetTests: XCTestCase {
    func testOriginFormSplitsDecodedPathAndRawQuery() throws {
        let target = try XCTUnwrap(RequestTarget("/a%20b/c?x=1&y=%20"))
        XCTAssertEqual(target.path, "/a b/c")
        XCTAssertEqual(target.query, "x=1&y=%20")
    }

    func testAbsoluteFormKeepsOnlyPathAndQuery() throws {
        XCTAssertEqual(RequestTarget("http://example.com/x?y=1")?.path, "/x")
        XCTAssertEqual(RequestTarget("http://example.com/x?y=1")?.query, "y=1")
        XCTAssertEqual(RequestTarget("http://example.com")?.path, "/")
        XCTAssertEqual(RequestTarget("http://example.com?q")?.query, "q")
    }

    func testAsteriskForm() {
        XCTAssertEqual(RequestTarget("*")?.path, "*")
    }

    func testRejectsGarbageTargets() {
        for bad in ["hello", "", "%2F", "/a%zz", "/a%2", "/a%00b", "ht!tp://x/"] {
            XCTAssertNil(RequestTarget(bad), bad)
        }
    }

    func testQueryComponentDecoding() {
        XCTAssertEqual(PercentEncoding.decodeQueryComponent(Array("a+b%21%zz".utf8)), Array("a b!%zz".utf8))
    }

    func testHostWithoutPort() {
        XCTAssertEqual(HTTPRequest.hostWithoutPort("example.com:8080"), "example.com")
        XCTAssertEqual(HTTPRequest.hostWithoutPort("[::1]:8080"), "[::1]")
        XCTAssertEqual(HTTPRequest.hostWithoutPort("[::1]"), "[::1]")
        XCTAssertEqual(HTTPRequest.hostWithoutPort("example.com"), "example.com")
    }

    func testDateFormat() {
        XCTAssertEqual(HTTPDateCache.format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
