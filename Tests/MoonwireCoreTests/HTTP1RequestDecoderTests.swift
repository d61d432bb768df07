// HTTP1RequestDecoder on its own: bytes in, request parts out, on an EmbeddedChannel. Parts are
// compared as text (RequestPartRecorder), so that a test states the exact head, body and
// trailers it expects and any split of the input can be checked against one transcript.
// Malformed input is in HTTP1RequestDecoderBadInputTests.swift.
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// Records what the decoder hands on, one line per event: a head as `METHOD uri HTTP/x.y` and
/// its fields in order, the body (consecutive slices joined, so any split reads the same), the
/// end with its trailers, and errors.
final class RequestPartRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart

    private(set) var events: [String] = []
    private(set) var errors: [any Error] = []
    /// Called after each part is recorded, to act as a handler behind the decoder might.
    var onPart: ((HTTPServerRequestPart, ChannelHandlerContext) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            let version = "HTTP/\(head.version.major).\(head.version.minor)"
            events.append((["\(head.method.rawValue) \(head.uri) \(version)"] + Self.lines(head.headers)).joined(separator: " | "))
        case .body(let buffer):
            if let last = events.last, last.hasPrefix("body ") {
                events[events.count - 1] = last + String(buffer: buffer)
            } else {
                events.append("body " + String(buffer: buffer))
            }
        case .end(let trailers):
            events.append((["end"] + Self.lines(trailers ?? [:])).joined(separator: " | "))
        }
        onPart?(part, context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
        events.append(Self.line(error))
    }

    /// How an error reads in `events`.
    static func line(_ error: any Error) -> String {
        "error \(error)"
    }

    private static func lines(_ headers: HTTPHeaders) -> [String] {
        headers.map { "\($0.name): \($0.value)" }
    }
}

/// A decoder on a connected EmbeddedChannel, with a recorder behind it.
final class DecoderHarness {
    let channel = EmbeddedChannel()
    let decoder: HTTP1RequestDecoder
    let recorder = RequestPartRecorder()

    init(maxHeadSize: Int = 1024) throws {
        decoder = HTTP1RequestDecoder(maxHeadSize: maxHeadSize)
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.pipeline.syncOperations.addHandler(recorder)
        // Connected, so that the decoder sees an active channel (it forwards bytes on removal only then).
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    var events: [String] { recorder.events }

    func feed(_ text: String) throws {
        try feed(Array(text.utf8))
    }

    func feed(_ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    /// Feeds `bytes` in pieces of `size`.
    func trickle(_ bytes: [UInt8], size: Int) throws {
        for start in stride(from: 0, to: bytes.count, by: size) {
            try feed(Array(bytes[start..<min(start + size, bytes.count)]))
        }
    }

    func finish() {
        _ = try? channel.finish()
    }
}

final class HTTP1RequestDecoderTests: XCTestCase {
    private var harnesses: [DecoderHarness] = []

    override func tearDown() {
        harnesses.forEach { $0.finish() }
        harnesses = []
    }

    private func harness(maxHeadSize: Int = 1024) throws -> DecoderHarness {
        let harness = try DecoderHarness(maxHeadSize: maxHeadSize)
        harnesses.append(harness)
        return harness
    }

    /// The events of a fresh decoder fed `pieces` one read each.
    private func decode(_ pieces: [[UInt8]]) throws -> [String] {
        let harness = try DecoderHarness()
        defer { harness.finish() }
        for piece in pieces { try harness.feed(piece) }
        return harness.events
    }

    // MARK: - Heads

    func testSimpleGet() throws {
        let decoder = try harness()
        try decoder.feed("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n")
        XCTAssertEqual(decoder.events, ["GET /index.html?q=1 HTTP/1.1 | Host: example.com | Accept: */*", "end"])
        XCTAssertTrue(decoder.recorder.errors.isEmpty)
    }

    func testFieldValuesLoseOnlySurroundingWhitespace() throws {
        let decoder = try harness()
        try decoder.feed("GET / HTTP/1.1\r\nHost: x\r\nX-A:   two  words \t\r\nX-B:\tv\r\nX-Empty:\r\nx-lower: Case Kept\r\nX-Tab: a\tb\r\n\r\n")
        XCTAssertEqual(
            decoder.events,
            ["GET / HTTP/1.1 | Host: x | X-A: two  words | X-B: v | X-Empty:  | x-lower: Case Kept | X-Tab: a\tb", "end"])
    }

    func testLFOnlyLineEndings() throws {
        let decoder = try harness()
        try decoder.feed("POST /lf HTTP/1.1\nHost: x\nContent-Length: 2\n\nok")
        XCTAssertEqual(decoder.events, ["POST /lf HTTP/1.1 | Host: x | Content-Length: 2", "body ok", "end"])
    }

    func testLeadingEmptyLinesAreIgnored() throws {
        let decoder = try harness()
        try decoder.feed("\r\n\r\n\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(decoder.events, ["GET /a HTTP/1.1 | Host: x", "end", "GET /b HTTP/1.1 | Host: x", "end"])
    }

    func testHTTP10() throws {
        let decoder = try harness()
        try decoder.feed("GET /old HTTP/1.0\r\nUser-Agent: t\r\n\r\n")
        XCTAssertEqual(decoder.events, ["GET /old HTTP/1.0 | User-Agent: t", "end"])
    }

    func testOtherMethodsAndZeroLength() throws {
        let decoder = try harness()
        try decoder.feed("PURGE /x HTTP/1.1\r\nHost: x\r\n\r\nHEAD /h HTTP/1.1\r\nHost: x\r\n\r\nPATCH /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(decoder.events, ["PURGE /x HTTP/1.1 | Host: x", "end", "HEAD /h HTTP/1.1 | Host: x", "end", "PATCH /p HTTP/1.1 | Host: x | Content-Length: 0", "end"])
    }

    func testRepeatedIdenticalContentLengthIsAccepted() throws {
        let decoder = try harness()
        try decoder.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length:  3 \r\n\r\nabc")
        XCTAssertEqual(decoder.events, ["POST / HTTP/1.1 | Host: x | Content-Length: 3 | Content-Length: 3", "body abc", "end"])
    }

    // MARK: - Splits

    /// A Content-Length request, an empty line, a chunked one (extensions, an LF-only chunk
    /// line, trailers), then a GET.
    private let splitRequests = Array(
        ("POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello world\r\n"
            + "PUT /chunks HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n6 ; a=\"b\"\nworld!\r\n0\r\nChecksum: abc\r\nX-Trailer:  1\r\n\r\n"
            + "GET /last HTTP/1.1\r\nHost: x\r\n\r\n").utf8)

    private let splitEvents = [
        "POST /upload?x=1 HTTP/1.1 | Host: example.com | Content-Length: 11", "body hello world", "end",
        "PUT /chunks HTTP/1.1 | Host: example.com | Transfer-Encoding: chunked", "body helloworld!",
        "end | Checksum: abc | X-Trailer: 1",
        "GET /last HTTP/1.1 | Host: x", "end",
    ]

    func testWholeInput() throws {
        XCTAssertEqual(try decode([splitRequests]), splitEvents)
    }

    func testOneByteAtATime() throws {
        XCTAssertEqual(try decode(splitRequests.map { [$0] }), splitEvents)
    }

    func testEveryTwoWaySplit() throws {
        for split in 1..<splitRequests.count {
            let pieces = [Array(splitRequests[..<split]), Array(splitRequests[split...])]
            XCTAssertEqual(try decode(pieces), splitEvents, "split at \(split)")
        }
    }

    // A read that ends with the CR of an empty line before a head (RFC 9112 section 2.2 lets a
    // client send CR LF after a body) waits for its LF instead of failing as a bad method.
    func testCRLFBetweenRequestsSplitAfterCR() throws {
        let decoder = try harness()
        try decoder.feed("GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r")
        try decoder.feed("\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(decoder.events, ["GET /a HTTP/1.1 | Host: x", "end", "GET /b HTTP/1.1 | Host: x", "end"])
    }

    // MARK: - Pipelining and keep-alive

    func testThreePipelinedRequests() throws {
        let decoder = try harness()
        try decoder.feed(
            "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
                + "POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        XCTAssertEqual(
            decoder.events,
            [
                "GET /1 HTTP/1.1 | Host: x", "end", "POST /2 HTTP/1.1 | Host: x | Content-Length: 4", "body body", "end",
                "POST /3 HTTP/1.1 | Host: x | Transfer-Encoding: chunked", "body abc", "end",
            ])
    }

    func testNothingAfterConnectionClose() throws {
        let decoder = try harness()
        try decoder.feed("GET /a HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        try decoder.feed("GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(decoder.events, ["GET /a HTTP/1.1 | Host: x | Connection: foo, close", "end"])
    }

    func testNothingAfterHTTP10WithoutKeepAlive() throws {
        let decoder = try harness()
        try decoder.feed("GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
        try decoder.feed("garbage")
        XCTAssertEqual(decoder.events, ["GET /a HTTP/1.0", "end"])
    }

    func testHTTP10KeepAliveGoesOn() throws {
        let decoder = try harness()
        try decoder.feed("GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.0\r\n\r\n")
        XCTAssertEqual(decoder.events, ["GET /a HTTP/1.0 | Connection: Keep-Alive", "end", "GET /b HTTP/1.0", "end"])
    }

    // MARK: - Upgrade

    private let upgradeRequest = "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
    private let upgradeEvents = ["GET /chat HTTP/1.1 | Host: x | Connection: keep-alive, Upgrade | Upgrade: websocket", "end"]

    func testRemovalAfterUpgradeForwardsTheFollowingBytes() throws {
        let decoder = try harness()
        let frame: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        try decoder.feed(Array(upgradeRequest.utf8) + frame.prefix(4))
        // Arrives while paused: kept as well, not parsed.
        try decoder.feed(Array(frame.dropFirst(4)))
        XCTAssertEqual(decoder.events, upgradeEvents)
        XCTAssertTrue(decoder.decoder.isPaused)

        // The recorder goes first, so the forwarded bytes reach the channel's inbound buffer.
        try decoder.channel.pipeline.syncOperations.removeHandler(decoder.recorder).wait()
        try decoder.channel.pipeline.syncOperations.removeHandler(decoder.decoder).wait()
        XCTAssertEqual(try decoder.channel.readInbound(as: ByteBuffer.self), ByteBuffer(bytes: frame))
        XCTAssertNil(try decoder.channel.readInbound(as: ByteBuffer.self))
    }

    func testRemovalAfterUpgradeWithNothingFollowingForwardsNothing() throws {
        let decoder = try harness()
        try decoder.feed(upgradeRequest)
        try decoder.channel.pipeline.syncOperations.removeHandler(decoder.recorder).wait()
        try decoder.channel.pipeline.syncOperations.removeHandler(decoder.decoder).wait()
        XCTAssertNil(try decoder.channel.readInbound(as: ByteBuffer.self))
    }

    func testDeclinedUpgradeResumesParsing() throws {
        let decoder = try harness()
        try decoder.feed(upgradeRequest + "GET /next HTTP/1.1\r\nHost: x\r\n\r\nPOST /more HTTP/1.1\r\nHost: x\r\nContent-Le")
        XCTAssertEqual(decoder.events, upgradeEvents)
        XCTAssertTrue(decoder.decoder.isPaused)
        try decoder.feed("ngth: 1\r\n\r\n")

        decoder.decoder.upgradeDeclined()
        // Resumes on the event loop, not inside the call.
        XCTAssertEqual(decoder.events, upgradeEvents)
        decoder.channel.embeddedEventLoop.run()
        XCTAssertFalse(decoder.decoder.isPaused)
        try decoder.feed("!")
        XCTAssertEqual(decoder.events, upgradeEvents + ["GET /next HTTP/1.1 | Host: x", "end", "POST /more HTTP/1.1 | Host: x | Content-Length: 1", "body !", "end"])
    }

    func testDeclinedUpgradeWithNothingKept() throws {
        let decoder = try harness()
        try decoder.feed(upgradeRequest)
        decoder.decoder.upgradeDeclined()
        decoder.channel.embeddedEventLoop.run()
        XCTAssertFalse(decoder.decoder.isPaused)
        try decoder.feed("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(decoder.events, upgradeEvents + ["GET /next HTTP/1.1 | Host: x", "end"])
    }

    func testUpgradeNeedsBothFields() throws {
        let decoder = try harness()
        try decoder.feed("GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertFalse(decoder.decoder.isPaused)
        XCTAssertEqual(
            decoder.events, ["GET /a HTTP/1.1 | Host: x | Upgrade: websocket", "end", "GET /b HTTP/1.1 | Host: x | Connection: upgrade", "end", "GET /c HTTP/1.1 | Host: x", "end"])
    }

    // MARK: - End of input

    private let eof = RequestPartRecorder.line(HTTPParserError.invalidEOFState)

    func testEOFMidHead() throws {
        let decoder = try harness()
        try decoder.feed("GET / HTTP/1.1\r\nHost: x\r\nHo")
        decoder.channel.pipeline.syncOperations.fireChannelInactive()
        XCTAssertEqual(decoder.events, [eof])
        XCTAssertEqual(decoder.recorder.errors.first as? HTTPParserError, .invalidEOFState)
    }

    func testEOFMidBody() throws {
        let decoder = try harness()
        try decoder.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
        try decoder.channel.close().wait()
        XCTAssertEqual(decoder.events, ["POST / HTTP/1.1 | Host: x | Content-Length: 5", "body ab", eof])
    }

    func testEOFMidChunkedBody() throws {
        for cut in ["", "3", "3\r\nab", "3\r\nabc", "3\r\nabc\r\n0\r\n", "3\r\nabc\r\n0\r\nT: v\r\n"] {
            let decoder = try harness()
            try decoder.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + cut)
            try decoder.channel.close().wait()
            XCTAssertEqual(decoder.events.last, eof, cut)
            XCTAssertEqual(decoder.recorder.errors.count, 1, cut)
        }
    }

    func testEOFBetweenRequestsIsQuiet() throws {
        let decoder = try harness()
        try decoder.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n")
        try decoder.channel.close().wait()
        XCTAssertEqual(decoder.events, ["GET / HTTP/1.1 | Host: x", "end"])

        let paused = try harness()
        try paused.feed(upgradeRequest + "xyz")
        paused.channel.pipeline.syncOperations.fireChannelInactive()
        XCTAssertEqual(paused.events, upgradeEvents)
    }

    // MARK: - Trailers

    func testAsManyTrailerFieldsAsAllowedInAnySplit() throws {
        let head = "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let fields = (0..<HTTP1RequestDecoder.maxTrailerFields).map { "T\($0): v" }
        let input = Array((head + "1\r\na\r\n0\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n").utf8)
        let expected = [
            "POST /t HTTP/1.1 | Host: x | Transfer-Encoding: chunked", "body a", (["end"] + fields).joined(separator: " | "),
            "GET /n HTTP/1.1 | Host: x", "end",
        ]
        XCTAssertEqual(try decode([input]), expected)
        XCTAssertEqual(try decode(input.map { [$0] }), expected)
    }

    /// Trailers get what the head left of the budget; the empty line that ends them always fits.
    func testHeadAndTrailersAtTheLimit() throws {
        let head = "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let full = try harness(maxHeadSize: head.utf8.count)
        try full.feed(head + "0\r\n\r\n")
        XCTAssertEqual(full.events, ["POST /t HTTP/1.1 | Host: x | Transfer-Encoding: chunked", "end"])

        let trailer = "Checksum: 12345\r\n"
        let fits = try harness(maxHeadSize: head.utf8.count + trailer.utf8.count)
        try fits.trickle(Array((head + "0\r\n" + trailer + "\r\n").utf8), size: 3)
        XCTAssertEqual(fits.events, ["POST /t HTTP/1.1 | Host: x | Transfer-Encoding: chunked", "end | Checksum: 12345"])

        let over = try harness(maxHeadSize: head.utf8.count + trailer.utf8.count - 1)
        try over.trickle(Array((head + "0\r\n" + trailer + "\r\n").utf8), size: 3)
        XCTAssertEqual(over.events, ["POST /t HTTP/1.1 | Host: x | Transfer-Encoding: chunked", RequestPartRecorder.line(HTTPParserError.headerOverflow)])
    }

    // MARK: - Large heads

    func testTrickledLargeHead() throws {
        let decoder = try harness(maxHeadSize: 64 * 1024)
        var head = "GET /big HTTP/1.1\r\nHost: x\r\n"
        var expected = ["GET /big HTTP/1.1 | Host: x"]
        for index in 0..<640 {
            let value = String(repeating: Character(UnicodeScalar(UInt8(ascii: "a") + UInt8(index % 26))), count: 80)
            head += "X-Field-\(index): \(value)\r\n"
            expected.append("X-Field-\(index): \(value)")
        }
        head += "\r\n"
        XCTAssertGreaterThan(head.utf8.count, 60_000)
        XCTAssertLessThan(head.utf8.count, 64 * 1024)
        try decoder.trickle(Array((head + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n").utf8), size: 100)
        XCTAssertEqual(decoder.events, [expected.joined(separator: " | "), "end", "GET /next HTTP/1.1 | Host: x", "end"])
    }
}
