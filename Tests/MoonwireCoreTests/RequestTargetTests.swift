import NIOCore
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

    func testAbsoluteFormAuthorityMustBeAHost() {
        XCTAssertEqual(RequestTarget.authority(of: "http://example.com:8080/x"), "example.com:8080")
        XCTAssertEqual(RequestTarget.authority(of: "https://[::1]?q"), "[::1]")
        XCTAssertEqual(RequestTarget("https://[::1]?q")?.path, "/")
        XCTAssertEqual(RequestTarget.authority(of: "http://example.com"), "example.com")
        XCTAssertNil(RequestTarget.authority(of: "/x"))
        XCTAssertNil(RequestTarget.authority(of: "*"))
        XCTAssertNil(RequestTarget.authority(of: "http://user@example.com/"))
        for bad in ["http://user@example.com/", "http:///x", "http://:80/x", "http://a:x/", "http://a%zz/"] {
            XCTAssertNil(RequestTarget(bad), bad)
        }
    }

    /// RFC 9112 section 3.2.2: the target's authority names the host, not the Host header.
    func testAbsoluteFormAuthorityIsTheHost() throws {
        let request = try XCTUnwrap(
            HTTPRequest(
                method: "GET", uri: "http://Target.example:81/a?b", version: "1.1", scheme: "http", headers: ["Host": "header.example"],
                body: ByteBuffer(), connection: ConnectionInfo(remoteIP: "", remotePort: 0, localPort: 0)))
        XCTAssertEqual(request.host, "Target.example")
        XCTAssertEqual(request.path, "/a")
        XCTAssertEqual(request.headers.first(name: "host"), "header.example")
    }

    func testHostSyntax() {
        func valid(_ value: String) -> Bool {
            var value = value
            return value.withUTF8 { HostSyntax.isValid(UnsafeRawBufferPointer($0), 0..<$0.count) }
        }
        for good in [
            "", "a", "example.com", "example.com:", "example.com:8080", "127.0.0.1", "[::1]", "[::1]:443", "[fe80::1%25eth0]", "[v1.fe]",
            "a-b_c~d", "a%41", "!$&'()*+,;=",
        ] {
            XCTAssertTrue(valid(good), good)
        }
        for bad in ["a b", "a/b", "a@b", "a:b", "a:1:2", "[::1", "[]", "[::1]x", "[::1]:x", "a%4", "a%zz", "b\u{FC}cher", "a\\b", "a?"] {
            XCTAssertFalse(valid(bad), bad)
        }
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
        for (value, host) in [
            ("example.com:80", "example.com"), ("example.com:", "example.com"), ("127.0.0.1:8080", "127.0.0.1"),
            ("[::1]:8080", "[::1]"), ("[2001:db8::1]:443", "[2001:db8::1]"), ("bücher.example:81", "bücher.example"),
        ] {
            XCTAssertEqual(HTTPRequest.hostWithoutPort(value), host, value)
        }
    }

    func testHostValuesThatAreNotHostAndPortAreKeptWhole() {
        for value in ["EXAMPLE.com", "[::1]", "", "::1", "[::1", "foo:bar:baz", "foo:bar", "[::1]x", "[::1]:8o", "a:1:2"] {
            XCTAssertEqual(HTTPRequest.hostWithoutPort(value), value, value)
        }
    }

    func testStrippingTwiceChangesNothing() {
        for value in ["a.b:1", "[::1]:2", "x", "", "::1", "a:b:c"] {
            let once = HTTPRequest.hostWithoutPort(value)
            XCTAssertEqual(HTTPRequest.hostWithoutPort(once), once, value)
        }
    }

    func testDateFormat() {
        XCTAssertEqual(HTTPDateCache.format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
