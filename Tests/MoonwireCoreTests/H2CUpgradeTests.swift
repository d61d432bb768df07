import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import XCTest

@testable import MoonwireCore

final class H2CUpgradeTests: XCTestCase {
    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// SETTINGS with MAX_CONCURRENT_STREAMS 100 and INITIAL_WINDOW_SIZE 65535.
    private static let settings: [UInt8] =
        [0x00, 0x00, 0x0C, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]
        + [0x00, 0x03, 0x00, 0x00, 0x00, 0x64, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xFF]
    private static let emptySettings: [UInt8] = [0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]
    /// WINDOW_UPDATE on the connection, then a PING.
    private static let laterFrames: [UInt8] =
        [0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x00, 0x01]
        + [0x00, 0x00, 0x08, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 7, 8]

    private static func upgradeRequest(extra: [(String, String)] = []) -> HTTPRequestHead {
        var headers = HTTPHeaders([
            ("Host", "example.test:8080"),
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
            ("User-Agent", "curl/8.5.0"),
            ("Accept", "*/*"),
            ("TE", "trailers"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Custom", "Mixed Case Value"),
        ])
        headers.add(contentsOf: extra)
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: "/search?q=moon&x=%20", headers: headers)
    }

    /// Splits a frame into its header fields and payload, checking the length field.
    private func parseFrame(_ frame: ByteBuffer) throws -> (type: UInt8, flags: UInt8, stream: UInt32, payload: ByteBuffer) {
        var frame = frame
        let length = try XCTUnwrap(frame.readInteger(as: UInt32.self)) >> 8
        frame.moveReaderIndex(to: frame.readerIndex - 1)
        let type = try XCTUnwrap(frame.readInteger(as: UInt8.self))
        let flags = try XCTUnwrap(frame.readInteger(as: UInt8.self))
        let stream = try XCTUnwrap(frame.readInteger(as: UInt32.self))
        XCTAssertEqual(Int(length), frame.readableBytes, "the length field covers exactly the payload")
        return (type, flags, stream, frame)
    }

    /// Decodes with a list size limit well above one frame: these tests look at the encoding.
    private func decodedHeaders(of frame: ByteBuffer) throws -> HPACKHeaders {
        var payload = try parseFrame(frame).payload
        var decoder = HPACKDecoder(
            allocator: ByteBufferAllocator(), maxDynamicTableSize: HPACKDecoder.maxDynamicTableSize, maxHeaderListSize: 1 << 20)
        let headers = try decoder.decodeHeaders(from: &payload)
        XCTAssertEqual(payload.readableBytes, 0)
        return headers
    }

    // MARK: headersFrame(for:)

    func testFrameHeaderIsHEADERSOnStreamOneWithEndStreamAndEndHeaders() throws {
        let frame = try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest()))
        let parsed = try parseFrame(frame)
        XCTAssertEqual(parsed.type, 0x01)
        XCTAssertEqual(parsed.flags, 0x05)
        XCTAssertEqual(parsed.stream, 1)
        XCTAssertGreaterThan(parsed.payload.readableBytes, 0)
        XCTAssertLessThanOrEqual(parsed.payload.readableBytes, 16384)
    }

    func testPseudoHeadersComeFirstAndCarryTheRequest() throws {
        let headers = try decodedHeaders(of: try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest())))
        let fields = headers.map { "\($0.name): \($0.value)" }
        XCTAssertEqual(
            Array(fields.prefix(4)),
            [":method: GET", ":scheme: http", ":authority: example.test:8080", ":path: /search?q=moon&x=%20"])
        XCTAssertEqual(Array(fields.dropFirst(4)), ["user-agent: curl/8.5.0", "accept: */*", "x-custom: Mixed Case Value"])
    }

    func testConnectionSpecificHeadersAreGone() throws {
        let request = Self.upgradeRequest(extra: [("transfer-encoding", "chunked"), ("CONNECTION", "close"), ("HoSt", "other")])
        let headers = try decodedHeaders(of: try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: request)))
        for name in ["host", "connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding", "te"] {
            XCTAssertFalse(headers.contains(name: name), "\(name) must not reach HTTP/2")
        }
        XCTAssertEqual(headers.first(name: ":authority"), "example.test:8080")
        // HTTP/2 field names are lowercase.
        for (name, _, _) in headers { XCTAssertEqual(name, name.lowercased()) }
    }

    func testEveryFieldIsNeverIndexedSoTheDecoderTableStaysEmpty() throws {
        let frame = try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest()))
        var payload = try parseFrame(frame).payload
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        let headers = try decoder.decodeHeaders(from: &payload)
        for (name, _, indexing) in headers { XCTAssertEqual(indexing, .neverIndexed, name) }
        // A second frame decodes the same with the same decoder: nothing was added to its table.
        var again = try parseFrame(try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest()))).payload
        XCTAssertEqual(try decoder.decodeHeaders(from: &again), headers)
    }

    func testMethodAndMissingHost() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .DELETE, uri: "/item/7", headers: ["Upgrade": "h2c"])
        head.headers.add(name: "HTTP2-Settings", value: "")
        let headers = try decodedHeaders(of: try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: head)))
        XCTAssertEqual(headers.first(name: ":method"), "DELETE")
        XCTAssertEqual(headers.first(name: ":path"), "/item/7")
        XCTAssertEqual(headers.first(name: ":authority"), "")
        XCTAssertEqual(headers.count, 4)
    }

    func testOversizedHeaderSetReturnsNil() throws {
        let big = String(repeating: "a", count: 20000)
        XCTAssertNil(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest(extra: [("x-big", big)])))
        // Many small fields adding up past one frame as well.
        let many = (0..<2000).map { ("x-field-\($0)", "value") }
        XCTAssertNil(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest(extra: many)))
    }

    /// The largest `x-big` value `headersFrame` still accepts, by binary search.
    private func largestAcceptedValueLength() -> Int {
        var low = 0  // fits
        var high = 20000  // does not fit
        while high - low > 1 {
            let middle = (low + high) / 2
            if bigFrame(valueLength: middle) != nil { low = middle } else { high = middle }
        }
        return low
    }

    private func bigFrame(valueLength: Int) -> ByteBuffer? {
        H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest(extra: [("x-big", String(repeating: "b", count: valueLength))]))
    }

    func testLargestAcceptedHeaderSetFitsOneDefaultSizedFrame() throws {
        XCTAssertNotNil(bigFrame(valueLength: 0))
        XCTAssertNil(bigFrame(valueLength: 20000))
        let low = largestAcceptedValueLength()
        XCTAssertNil(bigFrame(valueLength: low + 1))
        let largest = try parseFrame(try XCTUnwrap(bigFrame(valueLength: low)))
        XCTAssertLessThanOrEqual(largest.payload.readableBytes, 16384)
        let headers = try decodedHeaders(of: try XCTUnwrap(bigFrame(valueLength: low)))
        XCTAssertEqual(headers.first(name: "x-big")?.utf8.count, low)
    }

    // MARK: the handler

    private func makeChannel(frame: ByteBuffer) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(H2CUpgradeRequest(frame: frame))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Every read that reached the end of the pipeline, in order.
    private func reads(_ channel: EmbeddedChannel) throws -> [[UInt8]] {
        var result: [[UInt8]] = []
        while var buffer = try channel.readInbound(as: ByteBuffer.self) {
            result.append(buffer.readBytes(length: buffer.readableBytes) ?? [])
        }
        return result
    }

    private func handlerIsGone(_ channel: EmbeddedChannel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: H2CUpgradeRequest.self)) == nil
    }

    private func frameBytes() throws -> (ByteBuffer, [UInt8]) {
        let frame = try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest()))
        return (frame, Array(frame.readableBytesView))
    }

    func testPrefaceAndSettingsInSmallPieces() throws {
        let (frame, frameBytes) = try frameBytes()
        for pieceSize in [1, 2, 5, 7, 24, 32] {
            let channel = try makeChannel(frame: frame)
            defer { _ = try? channel.finish() }
            let head = Self.preface + Self.settings
            var offset = 0
            while offset < head.count {
                let end = min(offset + pieceSize, head.count)
                XCTAssertFalse(handlerIsGone(channel), "piece size \(pieceSize): gone at \(offset)")
                try channel.writeInbound(ByteBuffer(bytes: head[offset..<end]))
                if end < head.count {
                    XCTAssertEqual(try reads(channel), [], "piece size \(pieceSize): forwarded before \(end) of \(head.count)")
                }
                offset = end
            }
            XCTAssertEqual(try reads(channel), [head, frameBytes], "piece size \(pieceSize)")
            XCTAssertTrue(handlerIsGone(channel), "piece size \(pieceSize)")
            // Later bytes go straight through, untouched.
            try channel.writeInbound(ByteBuffer(bytes: Self.laterFrames))
            XCTAssertEqual(try reads(channel), [Self.laterFrames])
        }
    }

    func testPrefaceSettingsAndMoreFramesInOnePiece() throws {
        let (frame, frameBytes) = try frameBytes()
        let channel = try makeChannel(frame: frame)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(bytes: Self.preface + Self.settings + Self.laterFrames))
        XCTAssertEqual(try reads(channel), [Self.preface + Self.settings, frameBytes, Self.laterFrames])
        XCTAssertTrue(handlerIsGone(channel))
    }

    func testPieceThatCompletesSettingsAlsoStartsTheNextFrame() throws {
        let (frame, frameBytes) = try frameBytes()
        let channel = try makeChannel(frame: frame)
        defer { _ = try? channel.finish() }
        let all = Self.preface + Self.settings + Self.laterFrames
        try channel.writeInbound(ByteBuffer(bytes: all[..<30]))
        XCTAssertEqual(try reads(channel), [])
        try channel.writeInbound(ByteBuffer(bytes: all[30..<50]))
        XCTAssertEqual(try reads(channel), [Self.preface + Self.settings, frameBytes, Array(all[(24 + 21)..<50])])
        try channel.writeInbound(ByteBuffer(bytes: all[50...]))
        XCTAssertEqual(try reads(channel), [Array(all[50...])])
    }

    func testEmptySettingsFrame() throws {
        let (frame, frameBytes) = try frameBytes()
        let channel = try makeChannel(frame: frame)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(bytes: Self.preface + Self.emptySettings[..<8]))
        XCTAssertEqual(try reads(channel), [])
        try channel.writeInbound(ByteBuffer(bytes: Self.emptySettings[8...]))
        XCTAssertEqual(try reads(channel), [Self.preface + Self.emptySettings, frameBytes])
        XCTAssertTrue(handlerIsGone(channel))
    }

    /// Feeds the client's connection start, one byte at a time, through the handler and NIO's
    /// server handler (inline streams, default settings) and returns the frames NIO read.
    private func framesThroughNIO(frame: ByteBuffer) throws -> [HTTP2Frame] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHandler(H2CUpgradeRequest(frame: frame))
        try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let all = Self.preface + Self.settings + Self.laterFrames
        for byte in all { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readInbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames
    }

    /// `headersFrame` promises a frame NIO's handler will take; the handler judges the block
    /// against SETTINGS_MAX_HEADER_LIST_SIZE as well (16384 until the client acknowledges the
    /// server's SETTINGS, which it cannot have done before this frame), where every field
    /// counts 32 bytes more than its name and value. A header set over that is refused before
    /// the 101, so the request is answered on HTTP/1.1 instead of failing the connection.
    func testTheLargestAcceptedHeaderSetIsAlsoAcceptedByNIO() throws {
        let largest = try XCTUnwrap(bigFrame(valueLength: largestAcceptedValueLength()))
        let frames = try framesThroughNIO(frame: largest)
        XCTAssertTrue(frames.contains { $0.streamID == 1 }, "\(frames)")
        var payload = try parseFrame(largest).payload
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        XCTAssertNoThrow(try decoder.decodeHeaders(from: &payload))
        // Many short fields: about 5.5 KB of block but about 20 KB of header list.
        XCTAssertNil(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest(extra: (0..<500).map { ("x-h-\($0)", "v") })))
    }

    func testNIOHTTP2HandlerAcceptsTheInjectedRequest() throws {
        // The real consumer: NIO's server handler (inline streams) must take the bytes as a
        // valid connection start and see the request on stream 1, ended.
        let frame = try XCTUnwrap(H2CUpgradeRequest.headersFrame(for: Self.upgradeRequest()))
        let frames = try framesThroughNIO(frame: frame)
        XCTAssertEqual(frames.count, 4, "\(frames)")
        guard frames.count == 4 else { return }
        guard case .settings(.settings) = frames[0].payload else { return XCTFail("\(frames[0])") }
        XCTAssertEqual(frames[1].streamID, 1)
        guard case .headers(let headers) = frames[1].payload else { return XCTFail("\(frames[1])") }
        XCTAssertTrue(headers.endStream)
        XCTAssertEqual(headers.headers.first(name: ":path"), "/search?q=moon&x=%20")
        XCTAssertEqual(headers.headers.first(name: "x-custom"), "Mixed Case Value")
        guard case .windowUpdate = frames[2].payload, case .ping = frames[3].payload else {
            return XCTFail("\(frames[2]), \(frames[3])")
        }
    }

    /// The first frame's length comes from the client. A SETTINGS frame longer than the
    /// default SETTINGS_MAX_FRAME_SIZE (16384) is a FRAME_SIZE_ERROR that NIO's handler
    /// would reject at once, but this handler keeps buffering up to 24 + 9 + 16 MiB first.
    func testFirstFrameBeyondTheDefaultMaxFrameSizeIsHandedOnInsteadOfBuffered() throws {
        let (frame, _) = try frameBytes()
        let channel = try makeChannel(frame: frame)
        defer { _ = try? channel.finish() }
        let header: [UInt8] = [0xFF, 0xFF, 0xFF, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]
        // NIO's handler alone refuses this frame as soon as it sees the header.
        let nio = EmbeddedChannel(handler: NIOHTTP2Handler(mode: .server))
        defer { _ = try? nio.finish() }
        XCTAssertThrowsError(try nio.writeInbound(ByteBuffer(bytes: Self.preface + header)))
        try channel.writeInbound(ByteBuffer(bytes: Self.preface + header))
        try channel.writeInbound(ByteBuffer(repeating: 0, count: 16384 + 1))
        let forwarded = try reads(channel).reduce(0) { $0 + $1.count }
        XCTAssertGreaterThan(
            forwarded, 0, "an oversized first frame should reach NIO's handler (which answers FRAME_SIZE_ERROR), not be held")
    }

    // MARK: the upgrader

    /// What `upgrader` says to `head` on a connection with NIO's upgrade handler: accepted,
    /// and whether it left H2CUpgradeBody (content kept) or H2CUpgradeDeclined (declined)
    /// in the pipeline.
    private func verdict(_ upgrader: H2CUpgrader, _ head: HTTPRequestHead) -> (accepted: Bool, keepsBody: Bool) {
        let upgradeHandler = HTTPServerUpgradeHandler(
            upgraders: [], httpEncoder: HTTPResponseEncoder(), extraHTTPHandlers: [], upgradeCompletionHandler: { _ in })
        let channel = EmbeddedChannel(handler: upgradeHandler)
        defer { _ = try? channel.finish() }
        let accepted =
            (try? upgrader.buildUpgradeResponse(channel: channel, upgradeRequest: head, initialResponseHeaders: [:]).wait()) != nil
        let pipeline = channel.pipeline.syncOperations
        XCTAssertEqual((try? pipeline.handler(type: H2CUpgradeDeclined.self)) == nil, accepted, "declined: the error stopper")
        return (accepted, (try? pipeline.handler(type: H2CUpgradeBody.self)) != nil)
    }

    func testUpgraderRefusesRequestsWithABodyOrTooManyHeaders() throws {
        let upgrader = H2CUpgrader(replaysRequest: true) { _, _ in }
        func accepts(_ head: HTTPRequestHead) -> Bool { verdict(upgrader, head).accepted }
        XCTAssertTrue(accepts(Self.upgradeRequest()))
        XCTAssertTrue(accepts(Self.upgradeRequest(extra: [("Content-Length", "0")])))
        XCTAssertFalse(accepts(Self.upgradeRequest(extra: [("Content-Length", "5")])))
        XCTAssertFalse(accepts(Self.upgradeRequest(extra: [("Transfer-Encoding", "chunked")])))
        XCTAssertFalse(accepts(Self.upgradeRequest(extra: [("x-big", String(repeating: "a", count: 20000))])))
    }

    /// The nghttp2 engine's upgrade opens stream 1 itself: no frame to fit, and content up to
    /// one initial stream window, kept by H2CUpgradeBody before NIO's upgrade handler.
    func testSessionUpgraderKeepsContentUpToOneStreamWindow() throws {
        let upgrader = H2CUpgrader(replaysRequest: false) { _, _ in }
        func accepts(_ extra: [(String, String)]) -> (Bool, Bool) { verdict(upgrader, Self.upgradeRequest(extra: extra)) }
        XCTAssertTrue(accepts([]) == (true, false))
        XCTAssertTrue(accepts([("Content-Length", "5")]) == (true, true))
        XCTAssertTrue(accepts([("Content-Length", "65535")]) == (true, true))
        XCTAssertTrue(accepts([("Content-Length", "65536")]) == (false, false))
        XCTAssertTrue(accepts([("Content-Length", "5"), ("Expect", "100-continue")]) == (false, false))
        XCTAssertTrue(accepts([("Transfer-Encoding", "chunked")]) == (false, false))
        XCTAssertTrue(accepts([("Content-Length", "5"), ("Content-Length", "5")]) == (false, false))
        XCTAssertTrue(accepts([("Content-Length", "five")]) == (false, false))
        XCTAssertTrue(accepts([("x-big", String(repeating: "a", count: 20000))]) == (true, false))
    }

    func testBothUpgradersRefuseAnInvalidHTTP2Settings() throws {
        var request = Self.upgradeRequest()
        request.headers.replaceOrAdd(name: "HTTP2-Settings", value: "AAIAAA")
        for replaysRequest in [true, false] {
            XCTAssertFalse(verdict(H2CUpgrader(replaysRequest: replaysRequest) { _, _ in }, request).accepted)
        }
    }

    /// The decline's error stops there and the stopper leaves; any other error goes on.
    func testTheStopperTakesOnlyTheDeclineAndLeaves() throws {
        let channel = EmbeddedChannel(handler: H2CUpgradeDeclined())
        defer { _ = try? channel.finish() }
        channel.pipeline.fireErrorCaught(HTTPServerUpgradeErrors.invalidHTTPOrdering)
        XCTAssertNoThrow(try channel.throwIfErrorCaught())
        XCTAssertNil(try? channel.pipeline.syncOperations.handler(type: H2CUpgradeDeclined.self))
        let other = EmbeddedChannel(handler: H2CUpgradeDeclined())
        defer { _ = try? other.finish() }
        other.pipeline.fireErrorCaught(ChannelError.ioOnClosedChannel)
        XCTAssertThrowsError(try other.throwIfErrorCaught())
    }

    /// Body parts pass into the keeper, the end and what follows it (the new protocol's
    /// bytes) pass on.
    func testTheBodyKeeperKeepsContentAndPassesTheRest() throws {
        let keeper = H2CUpgradeBody()
        let channel = EmbeddedChannel(handler: keeper)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "hello ")))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "there")))
        XCTAssertNil(try channel.readInbound(as: HTTPServerRequestPart.self))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        XCTAssertEqual(try channel.readInbound(as: HTTPServerRequestPart.self), .end(nil))
        try channel.writeInbound(ByteBuffer(string: "PRI"))
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: "PRI"))
        XCTAssertEqual(keeper.body, ByteBuffer(string: "hello there"))
    }
}
