import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// A delegate that answers every request with its method, path and body.
private final class EchoDelegate: ServerDelegate {
    var errors: [String] = []
    var requests: [HTTPRequest] = []

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        requests.append(request)
        var body = request.body
        let text = "\(request.method) \(request.path) \(body.readString(length: body.readableBytes) ?? "")"
        responder.respond(.plain(200, text))
    }

    func protocolError(_ connection: ConnectionInfo, message: String) {
        errors.append(message)
    }
}

final class HTTP1ConnectionTests: XCTestCase {
    private var connection: HTTP1TestConnection!
    private var delegate: EchoDelegate!
    private var channel: EmbeddedChannel { connection.channel }

    override func setUpWithError() throws {
        delegate = EchoDelegate()
        var limits = HTTPLimits()
        limits.maxBodySize = 16
        limits.maxHeaderSize = 1024
        limits.sendTimeout = 30
        connection = try HTTP1TestConnection(delegate: delegate, limits: limits)
    }

    override func tearDownWithError() throws {
        try connection.close()
    }

    private func send(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        return try connection.written()
    }

    func testPipelinedRequestsAnswerInOrder() throws {
        let output = try send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nhey")
        let first = try XCTUnwrap(output.range(of: "GET /a "))
        let second = try XCTUnwrap(output.range(of: "POST /b hey"))
        XCTAssertLessThan(first.lowerBound, second.lowerBound)
        XCTAssertEqual(delegate.requests.map(\.path), ["/a", "/b"])
    }

    func testChunkedBodyIsAssembled() throws {
        let output = try send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
        XCTAssertTrue(output.contains("POST /c abc"), output)
    }

    func testOversizeBodyIs413() throws {
        let output = try send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 413"), output)
        XCTAssertEqual(delegate.errors.count, 1)
    }

    func testOversizeChunkedBodyIs413() throws {
        let output = try send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n\(String(repeating: "x", count: 32))\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 413"), output)
    }

    func testOversizeHeaderIs431() throws {
        let output = try send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 431"), output)
    }

    func testGarbageIs400() throws {
        let output = try send("\u{16}\u{3}\u{1}not http at all\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 400"), output)
        XCTAssertEqual(delegate.errors.count, 1)
    }

    func testExpectContinue() throws {
        let interim = try send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(interim, "HTTP/1.1 100 Continue\r\n\r\n")
        XCTAssertTrue(try send("ok").contains("POST /e ok"))
    }

    /// After the first request the decoder hands heads over with their framing
    /// (`HTTPExchangeHandler.accept(_:framing:)`): the declared length, the keep-alive and the
    /// Expect rules must come out as they do when read from the fields.
    func testFramingFromTheDecoder() throws {
        XCTAssertTrue(try send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n").contains("GET /a"))
        XCTAssertTrue(try send("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n").hasPrefix("HTTP/1.1 413"))
    }

    func testExpectContinueAfterAFirstRequest() throws {
        XCTAssertTrue(try send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n").contains("GET /a"))
        let interim = try send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(interim, "HTTP/1.1 100 Continue\r\n\r\n")
        XCTAssertTrue(try send("ok").contains("POST /e ok"))
        // Without a body there is nothing to continue (RFC 9110 section 10.1.1).
        let output = try send("GET /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 200"), output)
    }

    func testConnectionCloseAfterAFirstRequest() throws {
        XCTAssertTrue(try send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n").contains("GET /a"))
        let output = try send("GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(output.contains("connection: close\r\n"), output)
        XCTAssertTrue(output.contains("GET /b"), output)
    }

    func testHTTP10KeepAliveAfterAFirstRequest() throws {
        XCTAssertTrue(try send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").contains("connection: keep-alive\r\n"))
        let output = try send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertTrue(output.contains("connection: keep-alive\r\n"), output)
        XCTAssertTrue(try send("GET /c HTTP/1.0\r\n\r\n").contains("connection: close\r\n"))
    }

    func testHeadHasLengthButNoBody() throws {
        let output = try send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(output.contains("content-length: 8\r\n"), output)
        XCTAssertTrue(output.hasSuffix("\r\n\r\n"), output)
    }

    /// Requests behind answers the client has not read wait, unparsed, until it reads.
    func testPipelinedRequestsWaitWhileTheClientDoesNotRead() throws {
        XCTAssertTrue(try send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n").contains("GET /a"))
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(try send("GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"), "")
        XCTAssertEqual(delegate.requests.map(\.path), ["/a"])
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(delegate.requests.map(\.path), ["/a", "/b", "/c"])
        let output = try connection.written()
        XCTAssertLessThan(try XCTUnwrap(output.range(of: "GET /b")).lowerBound, try XCTUnwrap(output.range(of: "GET /c")).lowerBound)
    }

    /// A client that reads none of its answers is closed after send_timeout (30 s here, the
    /// keep-alive timeout being 60), silently: a 408 would wait behind the answers it does not
    /// read.
    func testAClientThatDoesNotReadIsClosedAfterTheSendTimeout() throws {
        _ = try send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(try send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"), "")
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try connection.written(), "")
        XCTAssertEqual(delegate.errors, [])
        XCTAssertEqual(delegate.requests.map(\.path), ["/a"])
    }

    func testSlowHeaderGets408() throws {
        _ = try send("GET / HTTP/1.1\r\nHost")
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        var output = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { output += String(buffer: part) }
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 408"), output)
        XCTAssertEqual(delegate.errors, ["request timed out: header block not complete within 10 s (408)"])
    }

    /// One byte every 4 s is never 10 s of silence, but far below 500 bytes/s: 408 once the
    /// 10 s of grace plus 1 s per 500 bytes are spent.
    func testTrickledBodyGets408() throws {
        XCTAssertEqual(try send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"), "")
        for _ in 0..<2 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(4))
            XCTAssertEqual(try send("x"), "")
        }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2003))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        var output = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { output += String(buffer: part) }
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 408"), output)
        XCTAssertEqual(delegate.errors, ["request timed out: request body slower than 500 bytes/s (2 bytes in 10.004 s) (408)"])
        XCTAssertEqual(delegate.requests.count, 0)
    }
}
