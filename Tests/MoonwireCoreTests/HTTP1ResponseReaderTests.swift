import NIOCore
import XCTest

@testable import MoonwireCore

/// Responses read whole, whatever the reads they arrive in: lengths, chunks (with extensions
/// and trailers), bodies that end with the connection, interim answers, and garbage refused.
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
}
