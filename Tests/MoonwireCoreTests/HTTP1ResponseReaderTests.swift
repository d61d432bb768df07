import NIOCore
import XCTest

@testable import MoonwireCore

/// Responses read whole, whatever the reads they arrive in: lengths, chunks (with extensions
/// and trailers), bodies that end with the connection, interim answers, and garbage refused;
/// interim heads and trailer sections are bounded.
final class HTTP1ResponseReaderTests: XCTestCase {
    /// Feeds `text` in pieces of `step` bytes; the reader's last progress.
    private func read(_ text: String, step: Int = .max, maxBodySize: Int = 1 << 20, isHead: Bool = false) throws
        -> (status: Int, body: String, reusable: Bool)?
    {
        var reader = HTTP1ResponseReader(maxBodySize: maxBodySize, isHead: isHead)
        var buffer = ByteBuffer()
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + step)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            if case .complete(let head, let body, let reusable) = try reader.read(&buffer) {
                return (head.status, String(buffer: body), reusable)
            }
        }
        return nil
    }

    func testContentLengthInEveryStep() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
        for step in 1...text.utf8.count {
            let result = try XCTUnwrap(try read(text, step: step), "step \(step)")
            XCTAssertEqual(result.status, 200)
            XCTAssertEqual(result.body, "hello")
            XCTAssertTrue(result.reusable)
        }
    }

    func testChunkedWithExtensionsAndTrailers() throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=x\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n"
        for step in [1, 2, 3, 7, 1000] {
            let result = try XCTUnwrap(try read(text, step: step))
            XCTAssertEqual(result.body, "hello!")
            XCTAssertTrue(result.reusable)
        }
    }

    func testFieldsAndConnectionClose() throws {
        var reader = HTTP1ResponseReader(maxBodySize: 100, isHead: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 404 Not Found\r\nSet-Cookie: a=1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        guard case .complete(let head, _, let reusable) = try reader.read(&buffer) else { return XCTFail("not complete") }
        XCTAssertEqual(head.status, 404)
        XCTAssertFalse(reusable)
        XCTAssertEqual(head.first("set-cookie"), "a=1")
        var names: [String] = []
        head.forEachField { name, _ in names.append(String(decoding: name, as: UTF8.self)) }
        XCTAssertEqual(names, ["Set-Cookie", "Connection", "Content-Length"])
    }

    /// The framing names and a keep-alive option are compared eight bytes at a time: any
    /// letter case matches, a near name does not.
    func testFramingFieldsInAnyLetterCase() throws {
        let length = try XCTUnwrap(try read("HTTP/1.1 200 OK\r\nCONTENT-length: 2\r\n\r\nhi"))
        XCTAssertEqual(length.body, "hi")
        XCTAssertTrue(length.reusable)
        let chunked = try XCTUnwrap(try read("HTTP/1.1 200 OK\r\nTransfer-ENCODING: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"))
        XCTAssertEqual(chunked.body, "hi")
        // HTTP/1.0 persists only when asked to, in any case, alone or in a list.
        for value in ["Keep-Alive", "KEEP-ALIVE", "foo, keep-alive"] {
            let kept = try XCTUnwrap(try read("HTTP/1.0 200 OK\r\nCONNECTION: \(value)\r\nContent-Length: 0\r\n\r\n"))
            XCTAssertTrue(kept.reusable, value)
        }
        for value in ["keep-alivf", "keep_alive"] {
            let closed = try XCTUnwrap(try read("HTTP/1.0 200 OK\r\nConnection: \(value)\r\nContent-Length: 0\r\n\r\n"))
            XCTAssertFalse(closed.reusable, value)
        }
        // A name of the same length that is not Content-Length does not frame the body.
        XCTAssertEqual(try read("HTTP/1.1 200 OK\r\nContent-Lengtx: 2\r\n\r\nhi")?.status, nil)
    }

    func testInterimAnswersAreSkippedAndHeadHasNoBody() throws {
        let result = try XCTUnwrap(try read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
        XCTAssertEqual(result.body, "abc")
        let head = try XCTUnwrap(try read("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", isHead: true))
        XCTAssertEqual(head.body, "")
        XCTAssertEqual(try read("HTTP/1.1 204 No Content\r\n\r\n")?.status, 204)
    }

    func testABodyUntilCloseEndsWithTheConnection() throws {
        var reader = HTTP1ResponseReader(maxBodySize: 100, isHead: false)
        var buffer = ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\npartial body")
        guard case .needMore = try reader.read(&buffer) else { return XCTFail("complete without a length") }
        XCTAssertEqual(reader.closed()?.status, 200)
        XCTAssertEqual(String(buffer: reader.bodySoFar), "partial body")
    }

    func testCapsAndGarbage() {
        XCTAssertThrowsError(try read("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", maxBodySize: 10)) {
            XCTAssertEqual($0 as? HTTP1ResponseReader.ReadError, .bodyTooLarge)
        }
        XCTAssertThrowsError(try read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n", maxBodySize: 10))
        XCTAssertThrowsError(try read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
        XCTAssertThrowsError(try read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n"))
        XCTAssertThrowsError(try read("SSH-2.0-OpenSSH\r\n\r\n"))
        XCTAssertThrowsError(try read("HTTP/1.1 2x0 OK\r\n\r\n"))
        XCTAssertThrowsError(try read("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"))
        XCTAssertThrowsError(try read("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"))
        XCTAssertThrowsError(try read("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 70_000), step: 4096)) {
            XCTAssertEqual($0 as? HTTP1ResponseReader.ReadError, .headTooLarge)
        }
    }

    /// What a streaming reader hands on from `text` fed in pieces of `step` bytes: interim
    /// statuses, the final status, and the reader once the answer is complete.
    private func stream(_ text: String, step: Int = .max) throws -> (interim: [OutboundResponseHead], status: Int?, reader: HTTP1ResponseReader?) {
        var reader = HTTP1ResponseReader(maxBodySize: 0, isHead: false, streams: true)
        var buffer = ByteBuffer()
        var interim: [OutboundResponseHead] = []
        var status: Int?
        let bytes = Array(text.utf8)
        for start in stride(from: 0, to: bytes.count, by: min(step, bytes.count)) {
            buffer.writeBytes(bytes[start..<min(bytes.count, start + step)])
            reading: while true {
                switch try reader.read(&buffer) {
                case .needMore: break reading
                case .interim(let head): interim.append(head)
                case .headArrived(let head): status = head.status
                case .complete: return (interim, status, reader)
                }
            }
        }
        return (interim, status, nil)
    }

    func testAStreamingReaderHandsOnInterimHeadsBeforeTheFinalOne() throws {
        let text = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        for step in [1, 5, 1000] {
            let result = try stream(text, step: step)
            XCTAssertEqual(result.interim.map(\.status), [103, 102], "step \(step)")
            XCTAssertEqual(result.interim.first?.first("link"), "</a.css>; rel=preload")
            XCTAssertEqual(result.status, 200)
            XCTAssertNotNil(result.reader)
        }
    }

    func testInterimHeadsWithoutEndAreCutOff() {
        let endless = String(repeating: "HTTP/1.1 102 Processing\r\n\r\n", count: HTTP1ResponseReader.maxInterimSize / 20)
        XCTAssertThrowsError(try stream(endless, step: 4096)) {
            XCTAssertEqual($0 as? HTTP1ResponseReader.ReadError, .tooManyInterim)
        }
        XCTAssertThrowsError(try read(endless)) { XCTAssertEqual($0 as? HTTP1ResponseReader.ReadError, .tooManyInterim) }
        // A 101 answers only an upgrade request; a malformed interim head is a malformed head.
        XCTAssertThrowsError(try stream("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"))
        XCTAssertThrowsError(try stream("HTTP/1.1 103 Early Hints\r\nLink </a.css>\r\n\r\n"))
        XCTAssertThrowsError(try stream("HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n"))
        XCTAssertThrowsError(try stream("HTTP/1.1 099 Low\r\n\r\n"))
        XCTAssertThrowsError(try stream("HTTP/1.1 1033 Long\r\n\r\n"))
    }

    func testTrailerFieldsAreKept() throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Checksum: abc\r\nX-Two: 2\r\n\r\n"
        for step in [1, 4, 1000] {
            let reader = try XCTUnwrap(try stream(text, step: step).reader, "step \(step)")
            XCTAssertEqual(reader.trailers.fields.map { "\($0.name)=\($0.value)" }, ["X-Checksum=abc", "X-Two=2"])
            XCTAssertNil(reader.trailers.dropped)
        }
    }

    func testOversizeOrMalformedTrailersAreDroppedAndTheConnectionNotReused() throws {
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
        // Trailer lines without end: given up on at the cap, the body still complete.
        let endless = chunked + String(repeating: "X-Pad: " + String(repeating: "p", count: 100) + "\r\n", count: 200)
        let malformed = chunked + "X-Good: 1\r\nno colon here\r\n\r\n"
        let oneLongLine = chunked + "X-Long: " + String(repeating: "l", count: HTTP1TrailerSection.maxSize)
        for text in [endless, malformed, oneLongLine] {
            var reader = HTTP1ResponseReader(maxBodySize: 100, isHead: false)
            var buffer = ByteBuffer(string: text)
            guard case .complete(_, let body, let reusable) = try reader.read(&buffer) else { return XCTFail("not complete") }
            XCTAssertEqual(String(buffer: body), "ok")
            XCTAssertFalse(reusable)
            XCTAssertTrue(reader.trailers.fields.isEmpty)
            XCTAssertNotNil(reader.trailers.dropped)
        }
    }
}
