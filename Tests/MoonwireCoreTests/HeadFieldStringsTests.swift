// HeadFieldStrings: a connection's fields given again for the same lines, and never for a line
// that differs in any byte; on its own and behind HTTP1RequestDecoder.
import NIOHTTP1
import XCTest

@testable import MoonwireCore

final class HeadFieldStringsTests: XCTestCase {
    /// The fields of a head whose field lines are `lines`, as `HTTP1HeadParser.parse` reads
    /// them, each line at `offset` in its bytes (as if after a request line).
    private func head(_ kept: inout HeadFieldStrings, _ lines: [String], offset: Int = 0) throws -> HTTPHeaders {
        kept.startHead()
        for line in lines {
            let bytes = Array(repeating: UInt8(ascii: "x"), count: offset) + Array(line.utf8)
            let (name, value) = try bytes.withUnsafeBytes { try kept.field($0, line: offset..<bytes.count) }
            // The ranges are the parser's, wherever the line lies.
            let parsed = try bytes.withUnsafeBytes { try HTTP1HeadParser.parseField($0, offset..<bytes.count) }
            XCTAssertEqual(name, parsed.0)
            XCTAssertEqual(value, parsed.1)
        }
        return kept.endHead()
    }

    private func pairs(_ headers: HTTPHeaders) -> [String] {
        headers.map { "\($0.name)=\($0.value)" }
    }

    /// Where the bytes of the value of field `index` are.
    private func storage(_ headers: HTTPHeaders, _ index: Int) -> UnsafePointer<UInt8>? {
        Array(headers)[index].value.utf8.withContiguousStorageIfAvailable { $0.baseAddress } ?? nil
    }

    func testEqualLinesGiveTheStringsKeptAndOthersNewOnes() throws {
        var kept = HeadFieldStrings()
        let agent = "User-Agent: a client whose name is longer than fifteen bytes"
        let first = try head(&kept, ["Host: example.com", agent])
        XCTAssertEqual(pairs(first), ["Host=example.com", "User-Agent=a client whose name is longer than fifteen bytes"])
        // The same lines elsewhere in the bytes: the same fields, the same storage.
        let again = try head(&kept, ["Host: example.com", agent], offset: 7)
        XCTAssertEqual(pairs(again), pairs(first))
        XCTAssertEqual(storage(first, 1), storage(again, 1))
        // One byte apart, at the same position: new strings, then kept in place of the old.
        XCTAssertEqual(pairs(try head(&kept, ["Host: example.org", agent])), ["Host=example.org", pairs(first)[1]])
        let third = try head(&kept, ["Host: example.com", agent])
        XCTAssertEqual(pairs(third), pairs(first))
        XCTAssertEqual(storage(third, 1), storage(first, 1))
        XCTAssertEqual(pairs(try head(&kept, ["host: example.com", agent])), ["host=example.com", pairs(first)[1]])
        // The same line at another position is not mistaken for the one kept there.
        XCTAssertEqual(pairs(try head(&kept, ["Accept: */*", "Host: example.com"])), ["Accept=*/*", "Host=example.com"])
        // Whitespace around the value is in the line, not in the strings.
        XCTAssertEqual(pairs(try head(&kept, ["Accept:   */*  ", "Host: example.com"])), ["Accept=*/*", "Host=example.com"])
        XCTAssertEqual(pairs(try head(&kept, ["Accept:   */*  ", "Host: example.com"], offset: 3)), ["Accept=*/*", "Host=example.com"])
    }

    func testFewerOrMoreFieldsThanBefore() throws {
        var kept = HeadFieldStrings()
        XCTAssertEqual(pairs(try head(&kept, ["A: 1", "B: 2", "C: 3"])), ["A=1", "B=2", "C=3"])
        XCTAssertEqual(pairs(try head(&kept, ["A: 1", "B: 2"])), ["A=1", "B=2"])
        XCTAssertEqual(pairs(try head(&kept, ["A: 1", "B: 2"])), ["A=1", "B=2"])
        XCTAssertEqual(pairs(try head(&kept, ["A: 1", "B: 2", "C: 4"])), ["A=1", "B=2", "C=4"])
        XCTAssertEqual(pairs(try head(&kept, ["A: 1", "B: 2", "C: 4"])), ["A=1", "B=2", "C=4"])
        XCTAssertEqual(pairs(try head(&kept, [])), [])
        XCTAssertEqual(pairs(try head(&kept, ["A: 1"])), ["A=1"])
        XCTAssertEqual(pairs(try head(&kept, ["B: 2", "A: 1"])), ["B=2", "A=1"])
    }

    func testInvalidLinesAreRefusedEvenAfterValidOnes() throws {
        var kept = HeadFieldStrings()
        _ = try head(&kept, ["Host: a", "X: 1"])
        for bad in ["X : 1", " X: 1", "X 1", "X: 1\u{7F}", ": 1", "X\u{0}: 1"] {
            XCTAssertThrowsError(try head(&kept, ["Host: a", bad]), bad)
        }
        XCTAssertEqual(pairs(try head(&kept, ["Host: a", "X: 1"])), ["Host=a", "X=1"])
    }

    func testLongLinesAndLateFieldsAreNotKeptButStillRead() throws {
        var kept = HeadFieldStrings()
        let long = "Cookie: " + String(repeating: "c", count: HeadFieldStrings.maxLine)
        let longValue = String(repeating: "c", count: HeadFieldStrings.maxLine)
        let many = (0..<(HeadFieldStrings.maxFields + 4)).map { "X-\($0): \($0)" }
        let manyPairs = (0..<(HeadFieldStrings.maxFields + 4)).map { "X-\($0)=\($0)" }
        for _ in 0..<2 {
            // The field after a long one keeps its position.
            XCTAssertEqual(pairs(try head(&kept, [long, "Accept: a"])), ["Cookie=" + longValue, "Accept=a"])
            XCTAssertEqual(pairs(try head(&kept, [long, "Accept: b"])), ["Cookie=" + longValue, "Accept=b"])
            XCTAssertEqual(pairs(try head(&kept, many)), manyPairs)
            XCTAssertEqual(pairs(try head(&kept, many)), manyPairs)
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
