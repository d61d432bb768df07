import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import XCTest

@testable import MoonwireCore

/// A delegate that answers every request with its method, path and body.
private final class EchoDelegate: ServerDelegate {
    var errors: [String] = []
    var requests: [HTTPRequest] = []

    func shouldAccept(_ connection: ConnectionInfo) -> Bool { true }

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        requests.append(request)
        var body = request.body
        let text = "\(request.method) \(request.path) \(body.readString(length: body.readableBytes) ?? "")"
        responder.respond(.plain(200, text))
    }

    func protocolError(_ connection: ConnectionInfo, message: String) {
        errors.append(message)
    }

    func pushLinks(for request: HTTPRequest) -> [String] { [] }
    func selectApplicationProtocol(_ connection: ConnectionInfo, offered: [String]) -> String? { nil }
    func verifyPeer(_ connection: ConnectionInfo, certificate: PeerCertificate) -> Bool { true }

    func webSocketHandshake(_ request: HTTPRequest) -> WebSocketHandshakeDecision { .refuse(.statusPage(404)) }
    func webSocketOpened(_ socket: WebSocketConnection) {}
    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {}
    func webSocketFragment(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool, isFinal: Bool) {}
    func webSocketHeartbeat(_ socket: WebSocketConnection) -> Bool { false }
    func webSocketDrained(_ socket: WebSocketConnection) {}
    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {}
}

final class HTTP1ConnectionTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var delegate: EchoDelegate!
    private var pool: NIOThreadPool!

    override func setUpWithError() throws {
        delegate = EchoDelegate()
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        var limits = HTTPLimits()
        limits.maxBodySize = 16
        limits.maxHeaderSize = 1024
        var configuration = ServerConfiguration()
        configuration.limits = limits
        let environment = ConnectionEnvironment(
            delegate: delegate, configuration: configuration, webSockets: WebSocketRegistry(), logger: Logger(label: "test"),
            files: StaticFileService(root: "/nonexistent", threadPool: pool))
        channel = EmbeddedChannel()
        try HTTP1Pipeline.configure(channel.pipeline.syncOperations, environment: environment, scheme: "http")
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
        try pool.syncShutdownGracefully()
    }

    private func send(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        var output = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(var buffer) = part { output += buffer.readString(length: buffer.readableBytes) ?? "" }
        }
        return output
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

    func testHeadHasLengthButNoBody() throws {
        let output = try send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(output.contains("content-length: 8\r\n"), output)
        XCTAssertTrue(output.hasSuffix("\r\n\r\n"), output)
    }

    func testSlowHeaderGets408() throws {
        _ = try send("GET / HTTP/1.1\r\nHost")
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        var output = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { output += String(buffer: part) }
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 408"), output)
        XCTAssertEqual(delegate.errors, ["request timed out (408)"])
    }
}
