import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// A delegate that keeps each request's responder, so a test decides when (and how) it answers.
private final class DeferringDelegate: ServerDelegate {
    var pending: [(HTTPRequest, HTTPResponder)] = []
    var errors: [String] = []

    func handle(_ request: HTTPRequest, responder: HTTPResponder) { pending.append((request, responder)) }
    func protocolError(_ connection: ConnectionInfo, message: String) { errors.append(message) }
}

/// Moonwire's own HTTP/1.1 response writing: the serializer's bytes, pipelining with answers
/// that come later, chunked streams and flushes per read batch.
final class HTTP1ResponseWritingTests: XCTestCase {
    private var connection: HTTP1TestConnection!
    private var delegate: DeferringDelegate!
    private var channel: EmbeddedChannel { connection.channel }

    override func setUpWithError() throws {
        delegate = DeferringDelegate()
        connection = try HTTP1TestConnection(delegate: delegate)
    }

    override func tearDownWithError() throws {
        try connection.close()
    }

    private func written() throws -> String {
        try connection.written()
    }

    private func body(of response: String) -> String {
        guard let end = response.range(of: "\r\n\r\n") else { return "" }
        return String(response[end.upperBound...])
    }

    func testSerializedHeadPutsTheServerFieldsAfterTheHandlers() {
        var buffer = ByteBuffer()
        var fields = ServerOwnedFields(contentLength: 5, date: "Wed, 02 Dec 2026 18:00:00 GMT")
        fields.connection = "close"
        HTTP1ResponseSerializer.writeHead(
            status: 200, version: .http1_1, headers: ["Content-Type": "text/plain", "Server": "theirs", "content-length": "99"],
            fields: fields, into: &buffer)
        XCTAssertEqual(
            String(buffer: buffer),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\nserver: moonwire\r\n"
                + "date: Wed, 02 Dec 2026 18:00:00 GMT\r\nconnection: close\r\n\r\n")
    }

    func testFieldLinesMadeBeforehandGiveTheSameHead() {
        let headers: HTTPHeaders = ["content-type": "text/html", "etag": "\"1-2\"", "vary": "Accept-Encoding"]
        let fields = ServerOwnedFields(contentLength: 5, date: "Wed, 02 Dec 2026 18:00:00 GMT")
        var fromHeaders = ByteBuffer()
        HTTP1ResponseSerializer.writeHead(status: 200, version: .http1_1, headers: headers, fields: fields, into: &fromHeaders)
        var fromLines = ByteBuffer()
        HTTP1ResponseSerializer.writeHead(
            status: 200, version: .http1_1, headers: headers, fields: fields,
            fieldLines: .serialized(HTTP1ResponseSerializer.fieldLines(headers)), into: &fromLines)
        XCTAssertEqual(String(buffer: fromLines), String(buffer: fromHeaders))
    }

    func testSerializedStatusLineForOtherStatusesAndVersions() {
        var buffer = ByteBuffer()
        HTTP1ResponseSerializer.writeHead(
            status: 599, version: .http1_0, headers: [:], fields: ServerOwnedFields(date: "d"), into: &buffer)
        XCTAssertEqual(String(buffer: buffer), "HTTP/1.0 599 \r\nserver: moonwire\r\ndate: d\r\n\r\n")
        buffer.clear()
        HTTP1ResponseSerializer.writeHead(
            status: 418, version: .http1_1, headers: [:], fields: ServerOwnedFields(contentLength: 0, date: "d"),
            into: &buffer)
        XCTAssertTrue(String(buffer: buffer).hasPrefix("HTTP/1.1 418 I'm a teapot\r\ncontent-length: 0\r\n"))
    }

    func testPipelinedRequestsWaitForTheAnswerInProgress() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertEqual(delegate.pending.map(\.0.path), ["/1"], "the later requests wait for the first answer")
        XCTAssertEqual(try written(), "")
        delegate.pending[0].1.respond(.plain(200, "one"))
        XCTAssertEqual(delegate.pending.map(\.0.path), ["/1", "/2"])
        delegate.pending[1].1.respond(.plain(200, "two"))
        delegate.pending[2].1.respond(.plain(200, "three"))
        let output = try written()
        let bodies = output.components(separatedBy: "HTTP/1.1 200 OK").dropFirst().map(body(of:))
        XCTAssertEqual(bodies, ["one", "two", "three"])
    }

    /// The writer reuses the buffer of the previous answer once the channel let go of it
    /// (read here), and not while the channel still holds it (the pipelined test above).
    func testAReusedBufferCarriesNothingOfTheAnswerBefore() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"))
        delegate.pending[0].1.respond(.plain(200, "a longer first body"))
        let first = try written()
        XCTAssertEqual(body(of: first), "a longer first body")
        try channel.writeInbound(ByteBuffer(string: "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"))
        delegate.pending[1].1.respond(.plain(404, "two"))
        let second = try written()
        XCTAssertTrue(second.hasPrefix("HTTP/1.1 404 Not Found\r\n"), second)
        XCTAssertEqual(body(of: second), "two")
        XCTAssertEqual(second.components(separatedBy: "HTTP/1.1").count, 2, second)
    }

    func testGarbageBehindAPipelinedRequestIsAnsweredAfterIt() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\u{1}\u{2} garbage\r\n\r\n"))
        XCTAssertEqual(try written(), "")
        delegate.pending[0].1.respond(.plain(200, "one"))
        let output = try written()
        let ok = try XCTUnwrap(output.range(of: "HTTP/1.1 200 OK"))
        let bad = try XCTUnwrap(output.range(of: "HTTP/1.1 400 Bad Request"))
        XCTAssertLessThan(ok.lowerBound, bad.lowerBound)
        XCTAssertEqual(delegate.errors.count, 1)
    }

    func testStreamedBodyIsChunkedOnHTTP11() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /s HTTP/1.1\r\nHost: x\r\n\r\n"))
        let stream = delegate.pending[0].1.startStream(status: 200, headers: ["content-type": "text/plain"])
        stream.write(ByteBuffer(string: "hello"))
        stream.write(ByteBuffer(string: String(repeating: "x", count: 20000)))
        stream.finish()
        let output = try written()
        XCTAssertTrue(output.contains("transfer-encoding: chunked\r\n"), output)
        XCTAssertEqual(body(of: output), "5\r\nhello\r\n4e20\r\n" + String(repeating: "x", count: 20000) + "\r\n0\r\n\r\n")
    }

    func testStreamedBodyOnHTTP10EndsWithTheConnection() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /s HTTP/1.0\r\n\r\n"))
        let stream = delegate.pending[0].1.startStream(status: 200, headers: [:])
        stream.write(ByteBuffer(string: "hello"))
        stream.finish()
        let output = try written()
        XCTAssertTrue(output.hasPrefix("HTTP/1.0 200 OK\r\n"), output)
        XCTAssertFalse(output.contains("transfer-encoding"), output)
        XCTAssertEqual(body(of: output), "hello")
    }

    func testStreamedHeadAnswerHasNoBodyBytes() throws {
        try channel.writeInbound(ByteBuffer(string: "HEAD /s HTTP/1.1\r\nHost: x\r\n\r\n"))
        let stream = delegate.pending[0].1.startStream(status: 200, headers: [:])
        stream.write(ByteBuffer(string: "hello"))
        stream.finish()
        let output = try written()
        XCTAssertTrue(output.contains("transfer-encoding: chunked\r\n"), output)
        XCTAssertEqual(body(of: output), "")
    }

    func testInterimHeadsGoBeforeTheAnswerAndTrailersAfterItsLastChunk() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /s HTTP/1.1\r\nHost: x\r\n\r\n"))
        let responder = delegate.pending[0].1
        responder.informational(status: 103, headers: ["link": "</a.css>; rel=preload"])
        let stream = responder.startStream(status: 200, headers: [:])
        responder.informational(status: 103, headers: ["link": "</late.css>"])
        stream.write(ByteBuffer(string: "hello"))
        stream.finish(trailers: ["x-checksum": "abc"])
        let output = try written()
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"), output)
        XCTAssertFalse(output.contains("late.css"), "an interim head after the answer started")
        XCTAssertTrue(output.hasSuffix("5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n"), output)
    }

    func testAnHTTP10ClientGetsNeitherInterimHeadsNorTrailers() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /s HTTP/1.0\r\n\r\n"))
        let responder = delegate.pending[0].1
        responder.informational(status: 103, headers: ["link": "</a.css>"])
        let stream = responder.startStream(status: 200, headers: [:])
        stream.write(ByteBuffer(string: "hello"))
        stream.finish(trailers: ["x-checksum": "abc"])
        let output = try written()
        XCTAssertTrue(output.hasPrefix("HTTP/1.0 200 OK\r\n"), output)
        XCTAssertEqual(body(of: output), "hello")
    }
}
