// HeadFieldStrings: a connection's field strings given again for the same lines, and never for
// a line that differs in any byte; on its own and behind HTTP1RequestDecoder.
import XCTest

@testable import MoonwireCore

final class HeadFieldStringsTests: XCTestCase {
    /// The strings of `line` (a `name: value` field line) as field `index`.
    private func strings(_ kept: inout HeadFieldStrings, _ index: Int, _ line: String) throws -> (String, String) {
        let bytes = Array(line.utf8)
        return try bytes.withUnsafeBytes { bytes in
            let (name, value) = try HTTP1HeadParser.parseField(bytes, 0..<bytes.count)
            return kept.strings(at: index, bytes, line: 0..<bytes.count, name: name, value: value)
        }
    }

    func testEqualLinesGiveTheStringsKeptAndOthersNewOnes() throws {
        var kept = HeadFieldStrings()
        let agent = "User-Agent: a client whose name is longer than fifteen bytes"
        XCTAssert(try strings(&kept, 0, "Host: example.com") == ("Host", "example.com"))
        let first = try strings(&kept, 1, agent)
        let again = try strings(&kept, 1, agent)
        XCTAssert(first == again)
        // The same storage: the second call made no new string.
        XCTAssertEqual(first.1.utf8.withContiguousStorageIfAvailable { $0.baseAddress }, again.1.utf8.withContiguousStorageIfAvailable { $0.baseAddress })
        // One byte apart, at the same position: new strings, then kept in place of the old.
        XCTAssert(try strings(&kept, 0, "Host: example.org") == ("Host", "example.org"))
        XCTAssert(try strings(&kept, 0, "Host: example.com") == ("Host", "example.com"))
        XCTAssert(try strings(&kept, 0, "host: example.com") == ("host", "example.com"))
        // The same line at another position is not mistaken for the one kept there.
        XCTAssert(try strings(&kept, 1, "Host: example.com") == ("Host", "example.com"))
        XCTAssert(try strings(&kept, 1, "Accept: */*") == ("Accept", "*/*"))
        // Whitespace around the value is in the line, not in the strings.
        XCTAssert(try strings(&kept, 1, "Accept:   */*  ") == ("Accept", "*/*"))
    }

    func testLongLinesAndLateFieldsAreNotKeptButStillRead() throws {
        var kept = HeadFieldStrings()
        let long = "Cookie: " + String(repeating: "c", count: HeadFieldStrings.maxLine)
        let longValue = String(repeating: "c", count: HeadFieldStrings.maxLine)
        XCTAssert(try strings(&kept, 0, long) == ("Cookie", longValue))
        XCTAssert(try strings(&kept, 0, long) == ("Cookie", longValue))
        // The field after a long one keeps its position.
        XCTAssert(try strings(&kept, 1, "Accept: a") == ("Accept", "a"))
        XCTAssert(try strings(&kept, 1, "Accept: b") == ("Accept", "b"))
        for index in 2..<(HeadFieldStrings.maxFields + 4) {
            XCTAssert(try strings(&kept, index, "X-\(index): \(index)") == ("X-\(index)", "\(index)"))
            XCTAssert(try strings(&kept, index, "X-\(index): \(index + 1)") == ("X-\(index)", "\(index + 1)"))
        }
    }

    func testRequestsOnOneConnectionReadTheirOwnFields() throws {
        let decoder = try DecoderHarness()
        defer { decoder.finish() }
        try decoder.feed("GET /1 HTTP/1.1\r\nHost: a\r\nAccept: x\r\nX-Id: 1\r\n\r\n")
        try decoder.feed("GET /2 HTTP/1.1\r\nHost: a\r\nAccept: y\r\nX-Id: 2\r\n\r\n")
        try decoder.feed("GET /3 HTTP/1.1\r\nHost: a\r\nX-Id: 3\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\nAccept: x\r\nX-Id: 1\r\n\r\n")
        XCTAssertEqual(
            decoder.events,
            [
                "GET /1 HTTP/1.1 | Host: a | Accept: x | X-Id: 1", "end",
                "GET /2 HTTP/1.1 | Host: a | Accept: y | X-Id: 2", "end",
                "GET /3 HTTP/1.1 | Host: a | X-Id: 3", "end",
                "GET /4 HTTP/1.1 | Host: a | Accept: x | X-Id: 1", "end",
            ])
    }
}
