// HeadFieldStrings: a connection's fields given again for the same lines, and never for a line
// that differs in any byte; on its own, behind HTTP1RequestDecoder, and behind
// HTTP1ResponseReader for an upstream's answers.
import NIOCore
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

    /// Answers read one after the other with the same field lines kept, as a connection reads
    /// them: each answer's status, fields, body and whether the connection stays, or its error.
    private func answers(_ texts: [String]) -> [String] {
        var kept = HeadFieldStrings()
        return texts.map { text in
            var reader = HTTP1ResponseReader(maxBodySize: 100, isHead: false)
            var buffer = ByteBuffer(string: text)
            do {
                guard case .complete(let head, let body, let reusable) = try reader.read(&buffer, fields: &kept) else { return "incomplete" }
                var fields: [String] = []
                head.forEachField { fields.append(String(decoding: $0, as: UTF8.self) + "=" + String(decoding: $1, as: UTF8.self)) }
                return "\(head.status) \(fields.joined(separator: " ")) [\(String(buffer: body))] \(reusable ? "stays" : "closes")"
            } catch {
                return "\(error)"
            }
        }
    }

    func testAnswersReadTheirOwnFieldsAndFraming() {
        let date = "Date: Mon, 07 Dec 2026 18:00:00 GMT\r\n"
        let later = "Date: Mon, 07 Dec 2026 18:00:01 GMT\r\n"
        XCTAssertEqual(
            answers([
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(date)Content-Length: 5\r\n\r\nhello",
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(date)Content-Length: 5\r\n\r\nhello",
                // Another Date; another length, of as many digits, then of more.
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(later)Content-Length: 3\r\n\r\nabc",
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(later)Content-Length: 10\r\n\r\n0123456789",
                // A field added in the middle, then removed; one fewer at the end.
                "HTTP/1.1 200 OK\r\nServer: s\r\nX-A: 1\r\n\(later)Content-Length: 10\r\n\r\n0123456789",
                "HTTP/1.1 201 OK\r\nServer: s\r\n\(later)Content-Length: 10\r\n\r\n0123456789",
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(later)\r\nuntil close",
                // The framing lines of before, after a Connection line: still read.
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(later)Content-Length: 10\r\nConnection: close\r\n\r\n0123456789",
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(later)Content-Length: 10\r\nConnection: close\r\n\r\n0123456789",
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(later)Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nServer: s\r\n\(later)Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            ]),
            [
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:00 GMT Content-Length=5 [hello] stays",
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:00 GMT Content-Length=5 [hello] stays",
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:01 GMT Content-Length=3 [abc] stays",
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:01 GMT Content-Length=10 [0123456789] stays",
                "200 Server=s X-A=1 Date=Mon, 07 Dec 2026 18:00:01 GMT Content-Length=10 [0123456789] stays",
                "201 Server=s Date=Mon, 07 Dec 2026 18:00:01 GMT Content-Length=10 [0123456789] stays",
                "incomplete",
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:01 GMT Content-Length=10 Connection=close [0123456789] closes",
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:01 GMT Content-Length=10 Connection=close [0123456789] closes",
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:01 GMT Transfer-Encoding=chunked [ok] stays",
                "200 Server=s Date=Mon, 07 Dec 2026 18:00:01 GMT Transfer-Encoding=chunked [ok] stays",
            ])
    }

    func testAnswersKeepTheirFieldsWhenTheNextOneMovesThem() throws {
        var kept = HeadFieldStrings()
        var heads: [OutboundResponseHead] = []
        // The same lines after status lines of other lengths, and other lines: every head still
        // alive keeps its own fields.
        for status in ["200 OK", "201 Created", "201 Created", "200 OK"] {
            for value in ["a", "bb", "bb"] {
                var reader = HTTP1ResponseReader(maxBodySize: 100, isHead: false)
                var buffer = ByteBuffer(string: "HTTP/1.1 \(status)\r\nServer: s\r\nX-V: \(value)\r\nContent-Length: 0\r\n\r\n")
                guard case .complete(let head, _, _) = try reader.read(&buffer, fields: &kept) else { return XCTFail("not complete") }
                heads.append(head)
            }
        }
        let values = heads.map { [$0.first("server"), $0.first("x-v"), $0.first("content-length")] }
        XCTAssertEqual(values, Array(repeating: [["s", "a", "0"], ["s", "bb", "0"], ["s", "bb", "0"]], count: 4).flatMap { $0 })
    }

    func testAnswerLinesThatAreInvalidAreRefusedAfterValidOnes() {
        let good = "HTTP/1.1 200 OK\r\nServer: s\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"
        let fine = "200 Server=s X-A=1 Content-Length=0 [] stays"
        let bad = "malformed(\"bad header field\")"
        // A bare CR or LF in a value would split the answer; a folded line, a name with
        // whitespace before its colon; each refused where a valid line was before, and the
        // valid line still read after.
        for line in ["X-A: 1\rInjected: 2", "X-A: 1\r\r", " X-A: 1", "X-A : 1", "X-A: \u{7F}1", "X-A 1"] {
            let text = "HTTP/1.1 200 OK\r\nServer: s\r\n\(line)\r\nContent-Length: 0\r\n\r\n"
            XCTAssertEqual(answers([good, text, good]), [fine, bad, fine], line)
        }
        // A bare LF ends the line: what follows is a line of its own, and not a field.
        XCTAssertEqual(answers([good, "HTTP/1.1 200 OK\r\nServer: s\r\nX-A: 1\nInjected\r\n\r\n"]), [fine, bad])
        // The same value with a CR in it where the kept line had none is not that line.
        XCTAssertEqual(answers([good, "HTTP/1.1 200 OK\r\nServer: s\r\nX-A: \r\r\nContent-Length: 0\r\n\r\n"]), [fine, bad])
    }
}
