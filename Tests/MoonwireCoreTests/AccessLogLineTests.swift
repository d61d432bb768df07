import NIOCore
import XCTest

@testable import MoonwireCore

/// The access log's two formats, byte for byte, and what a client cannot do to them.
final class AccessLogLineTests: XCTestCase {
    private func line(_ entry: AccessLogEntry, _ format: AccessLog.Format) -> String {
        var out: [UInt8] = []
        AccessLogLine.append(entry, time: AccessLogLine.timestamp(1_796_571_779, format: format), milliseconds: 1.5, format: format, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func entry(userAgent: String = "curl/8", bytes: Int? = 5) -> AccessLogEntry {
        AccessLogEntry(
            remoteIP: "10.0.0.1", method: "GET", target: "/a?b=1", version: "HTTP/1.1", status: 200, bytes: bytes,
            referer: "", userAgent: userAgent, started: .now())
    }

    func testCombined() {
        XCTAssertEqual(
            line(entry(), .combined), "10.0.0.1 - - [06/Dec/2026:15:42:59 +0000] \"GET /a?b=1 HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n")
        XCTAssertTrue(line(entry(bytes: nil), .combined).contains("\" 200 - \""))
        XCTAssertTrue(line(entry(bytes: 0), .combined).contains("\" 200 - \""))
    }

    func testCombinedEscapesQuotesBackslashesAndControlBytes() {
        XCTAssertTrue(line(entry(userAgent: "a\"b\\c\nd"), .combined).hasSuffix("\"a\\\"b\\\\c\\x0ad\"\n"))
    }

    func testJSON() {
        XCTAssertEqual(
            line(entry(userAgent: "a\"\n"), .json),
            "{\"time\":\"2026-12-06T15:42:59Z\",\"remote\":\"10.0.0.1\",\"method\":\"GET\",\"target\":\"/a?b=1\","
                + "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":5,\"referer\":\"\",\"user_agent\":\"a\\\"\\u000a\","
                + "\"duration_ms\":1.5}\n")
        XCTAssertTrue(line(entry(bytes: nil), .json).contains("\"bytes\":null"))
    }
}
