// Cutting the port off Host header values, IPv6 literals included.
import MoonwireRouting
import XCTest

final class HostHeaderTests: XCTestCase {
    func testPortsAreRemoved() {
        XCTAssertEqual(HostHeader.withoutPort("example.com:80"), "example.com")
        XCTAssertEqual(HostHeader.withoutPort("example.com:"), "example.com")
        XCTAssertEqual(HostHeader.withoutPort("127.0.0.1:8080"), "127.0.0.1")
        XCTAssertEqual(HostHeader.withoutPort("[::1]:8080"), "[::1]")
        XCTAssertEqual(HostHeader.withoutPort("[2001:db8::1]:443"), "[2001:db8::1]")
    }

    func testValuesWithoutPortAreKept() {
        XCTAssertEqual(HostHeader.withoutPort("EXAMPLE.com"), "EXAMPLE.com")
        XCTAssertEqual(HostHeader.withoutPort("[::1]"), "[::1]")
        XCTAssertEqual(HostHeader.withoutPort(""), "")
        XCTAssertEqual(HostHeader.withoutPort("::1"), "::1", "bare IPv6 is not host:port")
        XCTAssertEqual(HostHeader.withoutPort("[::1"), "[::1", "unterminated literal kept whole")
        XCTAssertEqual(HostHeader.withoutPort("bücher.example:81"), "bücher.example")
    }

    func testStrippingTwiceChangesNothing() {
        for value in ["a.b:1", "[::1]:2", "x", "", "::1"] {
            let once = HostHeader.withoutPort(value)
            XCTAssertEqual(HostHeader.withoutPort(once), once)
        }
    }
}
