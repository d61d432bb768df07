import CNGHTTP2
import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// HTTP2ServerSession on RFC 8441's extended CONNECT and on input it must refuse: what nghttp2
/// does with it, and that the session reports it.
final class HTTP2ServerSessionBadInputTests: XCTestCase {
    private static let connect: [(String, String)] = [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat"),
        (":authority", "example.com"), ("sec-websocket-version", "13"),
    ]

    /// The frames of `bytes` (after the client preface when there is one): type, flags,
    /// stream and payload.
    private static func frames(_ bytes: ByteBuffer) -> [(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8])] {
        var bytes = bytes
        var frames: [(UInt8, UInt8, UInt32, [UInt8])] = []
        while bytes.readableBytes >= 9 {
            let length = Int(bytes.readInteger(as: UInt16.self)!) << 8 | Int(bytes.readInteger(as: UInt8.self)!)
            let type = bytes.readInteger(as: UInt8.self)!
            let flags = bytes.readInteger(as: UInt8.self)!
            let stream = bytes.readInteger(as: UInt32.self)! & 0x7fff_ffff
            frames.append((type, flags, stream, bytes.readBytes(length: length)!))
        }
        return frames
    }

    /// The error code of the GOAWAY in `bytes`, if there is one.
    private static func goAwayError(_ bytes: ByteBuffer) -> UInt32? {
        guard let goAway = frames(bytes).first(where: { $0.type == UInt8(NGHTTP2_GOAWAY.rawValue) }) else { return nil }
        return goAway.payload[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The streams reported as malformed, in order.
    private static func malformed(_ events: [HTTP2SessionEvent]) -> [Int32] {
        events.compactMap { if case .malformedRequest(let stream, _) = $0 { stream } else { nil } }
    }

    func testWithTheSettingAnExtendedConnectArrivesWithItsProtocol() {
        let server = HTTP2ServerSession(settings: .init(enableConnectProtocol: true))
        let client = HTTP2TestClient()
        pump(client, server)
        XCTAssertEqual(client.serverSettings[Int32(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL.rawValue)], 1)
        let stream = client.request(Self.connect, body: Array("ws frames".utf8))
        let events = pump(client, server)
        let head = HTTP2ServerSessionTests.heads(events).first
        XCTAssertEqual(head?.method, "CONNECT")
        XCTAssertEqual(head?.protocol, "websocket")
        XCTAssertEqual(head?.path, "/chat")
        XCTAssertEqual(head?.fields["sec-websocket-version"], ["13"])
        XCTAssertEqual(head?.endStream, false)
        XCTAssertEqual(HTTP2ServerSessionTests.body(events, stream: stream).bytes, Array("ws frames".utf8))
    }

    /// nghttp2 takes `:protocol` as soon as the setting is submitted; RFC 8441 wants the client
    /// to have it first, which the server knows by the ACK (before, the session resets the
    /// stream as malformed).
    func testTheSettingCountsOnceTheClientAcknowledgedIt() {
        let server = HTTP2ServerSession(settings: .init(enableConnectProtocol: true))
        XCTAssertFalse(server.connectProtocolAcknowledged)
        let client = HTTP2TestClient()
        pump(client, server)
        XCTAssertTrue(server.connectProtocolAcknowledged)
        XCTAssertFalse(HTTP2ServerSession().connectProtocolAcknowledged)
    }

    func testAnExtendedConnectBeforeTheClientAcknowledgedTheSettingIsResetAsMalformed() {
        let server = HTTP2ServerSession(settings: .init(enableConnectProtocol: true))
        var events: [HTTP2SessionEvent] = []
        var input = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        input.writeBytes([0, 0, 0, 0x04, 0, 0, 0, 0, 0])  // empty SETTINGS, no ACK of the server's
        let client = HTTP2TestClient()
        let stream = client.request(Self.connect, body: [])
        var request = client.output()
        request.moveReaderIndex(forwardBy: 24)  // its own preface
        input.writeBuffer(&request)
        server.receive(input, into: &events)
        XCTAssertFalse(server.connectProtocolAcknowledged)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events), [])
        XCTAssertEqual(Self.malformed(events), [stream])
        var output = ByteBuffer()
        server.takeOutput(into: &output, events: &events)
        let resets = Self.frames(output).filter { $0.type == UInt8(NGHTTP2_RST_STREAM.rawValue) }
        XCTAssertEqual(resets.map(\.stream), [UInt32(stream)])
        XCTAssertEqual(resets.first?.payload, [0, 0, 0, UInt8(NGHTTP2_PROTOCOL_ERROR.rawValue)])
        XCTAssertEqual(Self.malformed(events), [stream], "once")
    }

    func testWithoutTheSettingAnExtendedConnectIsResetAsMalformed() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        pump(client, server)
        XCTAssertNil(client.serverSettings[Int32(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL.rawValue)])
        let stream = client.request(Self.connect, body: [])
        let fine = client.request(HTTP2ServerSessionTests.get())
        let events = pump(client, server)
        XCTAssertEqual(client.streams[stream]?.resetWith, NGHTTP2_PROTOCOL_ERROR.rawValue)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [fine])
        XCTAssertEqual(Self.malformed(events), [stream])
        XCTAssertFalse(events.contains { if case .connectionError = $0 { true } else { false } })
    }

    func testAnExtendedConnectWithoutAPathIsResetAsMalformed() {
        let server = HTTP2ServerSession(settings: .init(enableConnectProtocol: true))
        let client = HTTP2TestClient()
        let stream = client.request(Self.connect.filter { $0.0 != ":path" }, body: [])
        let events = pump(client, server)
        XCTAssertEqual(client.streams[stream]?.resetWith, NGHTTP2_PROTOCOL_ERROR.rawValue)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events), [])
        XCTAssertEqual(events, [.malformedRequest(stream: stream, reason: "malformed header section (RFC 9113 section 8.3)")])
    }

    func testAWrongPrefaceIsFatalAndAnsweredWithGoAwayProtocolError() {
        let server = HTTP2ServerSession()
        var events: [HTTP2SessionEvent] = []
        server.receive(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), into: &events)
        XCTAssertEqual(events, [.connectionError(error: NGHTTP2_PROTOCOL_ERROR.rawValue)])
        var output = ByteBuffer()
        server.takeOutput(into: &output, events: &events)
        XCTAssertEqual(events.count, 1, "reported once")
        XCTAssertEqual(Self.frames(output).map(\.type), [UInt8(NGHTTP2_SETTINGS.rawValue), UInt8(NGHTTP2_GOAWAY.rawValue)])
        XCTAssertEqual(Self.goAwayError(output), NGHTTP2_PROTOCOL_ERROR.rawValue)
        XCTAssertFalse(server.wantsRead || server.wantsWrite, "close the connection")
        server.receive(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), into: &events)
        XCTAssertEqual(events.count, 1, "nothing read after the error")
    }

    func testGarbageAfterAValidPrefaceNeverBecomesARequestAndMostlyEndsTheConnection() {
        var generator = SplitMix64(seed: 27)
        var fatal = 0
        for _ in 0..<50 {
            let server = HTTP2ServerSession()
            let client = HTTP2TestClient()
            var events = pump(client, server)
            let garbage = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
            server.receive(ByteBuffer(bytes: garbage), into: &events)
            var output = ByteBuffer()
            server.takeOutput(into: &output, events: &events)
            XCTAssertEqual(HTTP2ServerSessionTests.heads(events), [], "garbage: \(garbage.prefix(32))")
            guard case .connectionError(let code)? = events.last else { continue }
            fatal += 1
            XCTAssertNotEqual(code, NGHTTP2_NO_ERROR.rawValue)
            XCTAssertEqual(Self.goAwayError(output), code)
            XCTAssertFalse(server.wantsRead || server.wantsWrite)
        }
        XCTAssertGreaterThanOrEqual(fatal, 40, "4 KiB of noise is almost never a valid frame sequence")
    }

    /// A HEADERS frame (END_STREAM, END_HEADERS) of a GET / with one more field, HPACK
    /// literals without indexing and without Huffman coding: an nghttp2 client would
    /// lowercase the name on its own.
    private static func getFrame(stream: UInt32, name: String, value: String) -> [UInt8] {
        var block: [UInt8] = [0x82, 0x87, 0x84, 0x01, 11] + Array("example.com".utf8)
        block += [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
        let length = UInt32(block.count)
        let header: [UInt8] = [UInt8(length >> 16), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), 0x01, 0x05]
        return header + withUnsafeBytes(of: stream.bigEndian, Array.init) + block
    }

    func testAnUppercaseFieldNameResetsItsStreamOnly() {
        let server = HTTP2ServerSession()
        var events: [HTTP2SessionEvent] = []
        var input = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        input.writeBytes([0, 0, 0, 0x04, 0, 0, 0, 0, 0])  // empty SETTINGS
        input.writeBytes(Self.getFrame(stream: 1, name: "X-Upper", value: "1"))
        input.writeBytes(Self.getFrame(stream: 3, name: "x-lower", value: "1"))
        server.receive(input, into: &events)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [3])
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).first?.fields["x-lower"], ["1"])
        server.respond(stream: 3, status: 200, headers: [:], endStream: true)
        var output = ByteBuffer()
        server.takeOutput(into: &output, events: &events)
        let frames = Self.frames(output)
        let resets = frames.filter { $0.type == UInt8(NGHTTP2_RST_STREAM.rawValue) }
        XCTAssertEqual(resets.map(\.stream), [1])
        XCTAssertEqual(resets.first?.payload, [0, 0, 0, UInt8(NGHTTP2_PROTOCOL_ERROR.rawValue)])
        XCTAssertEqual(frames.filter { $0.type == UInt8(NGHTTP2_HEADERS.rawValue) }.map(\.stream), [3], "the other stream is answered")
        XCTAssertNil(Self.goAwayError(output))
        let closed = events.filter { if case .streamClosed = $0 { true } else { false } }
        XCTAssertEqual(closed, [.streamClosed(stream: 3, error: 0)], "stream 1's head was never reported")
        XCTAssertEqual(events.first, .malformedRequest(stream: 1, reason: "malformed field (RFC 9113 section 8.2)"))
        XCTAssertEqual(Self.malformed(events), [1], "once, whatever nghttp2 frames for it")
    }

    func testAConnectionSpecificFieldOrAContentLengthMismatchResetsTheStream() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let hopByHop = client.request(HTTP2ServerSessionTests.get() + [("connection", "keep-alive")])
        let short = client.request(HTTP2ServerSessionTests.post() + [("content-length", "10")], body: Array("12345".utf8))
        let events = pump(client, server)
        XCTAssertEqual(client.streams[hopByHop]?.resetWith, NGHTTP2_PROTOCOL_ERROR.rawValue)
        XCTAssertEqual(client.streams[short]?.resetWith, NGHTTP2_PROTOCOL_ERROR.rawValue)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [short], "the head was fine, its content was not")
        XCTAssertTrue(events.contains(.streamClosed(stream: short, error: NGHTTP2_PROTOCOL_ERROR.rawValue)))
        XCTAssertFalse(HTTP2ServerSessionTests.body(events, stream: short).ended)
        XCTAssertEqual(Self.malformed(events), [hopByHop, short])
        let reported = events.firstIndex(of: .malformedRequest(
            stream: short, reason: "content does not match content-length (RFC 9113 section 8.1.1)"))
        XCTAssertLessThan(reported ?? .max, events.firstIndex(of: .streamClosed(stream: short, error: 1)) ?? 0, "before its close")
    }

    /// RFC 9113 section 8.1.1's cases nghttp2 checks, each reported once with its stream, while
    /// a request among them is served; the connection goes on.
    func testEachMalformedRequestIsReportedOnceAndTheOthersAreServed() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let noPath = client.request(HTTP2ServerSessionTests.get().filter { $0.0 != ":path" })
        let doubled = client.request(HTTP2ServerSessionTests.get() + [(":path", "/again")])
        let lengthWithoutContent = client.request(HTTP2ServerSessionTests.get() + [("content-length", "5")])
        let fine = client.request(HTTP2ServerSessionTests.get("/fine"))
        let long = client.request(HTTP2ServerSessionTests.post() + [("content-length", "3")], body: Array("12345".utf8))
        let badTrailers = client.request(HTTP2ServerSessionTests.post(), body: Array("part".utf8), trailers: [("connection", "close")])
        var events = pump(client, server)
        let bad = [noPath, doubled, lengthWithoutContent, long, badTrailers]
        for stream in bad { XCTAssertEqual(client.streams[stream]?.resetWith, NGHTTP2_PROTOCOL_ERROR.rawValue, "stream \(stream)") }
        XCTAssertEqual(Set(Self.malformed(events)), Set(bad))
        XCTAssertEqual(Self.malformed(events).count, bad.count, "once per stream: \(Self.malformed(events))")
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [fine, long, badTrailers])
        server.respond(stream: fine, status: 200, headers: [:], endStream: true)
        events = pump(client, server)
        XCTAssertEqual(client.streams[fine]?.status, "200")
        XCTAssertNil(client.goAway)
    }

    /// Past `maxMalformedRequests` the connection ends, as nio ends it at its 201st stream
    /// error: a flood of malformed requests is logged no more than on nio.
    func testTooManyMalformedRequestsEndTheConnection() {
        let server = HTTP2ServerSession(settings: .init(maxMalformedRequests: 2))
        let client = HTTP2TestClient()
        let malformed = (0..<4).map { _ in client.request(HTTP2ServerSessionTests.get() + [("connection", "close")]) }
        let events = pump(client, server)
        XCTAssertEqual(Self.malformed(events), Array(malformed.prefix(2)))
        XCTAssertEqual(events.last, .connectionError(error: NGHTTP2_ENHANCE_YOUR_CALM.rawValue))
        XCTAssertEqual(events.filter { if case .connectionError = $0 { true } else { false } }.count, 1)
        XCTAssertEqual(client.goAway?.error, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        XCTAssertFalse(server.wantsRead || server.wantsWrite, "close the connection")
    }

    /// A reset the caller asks for is its own business, not a malformed request.
    func testTheCallersProtocolErrorResetIsNotReported() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(HTTP2ServerSessionTests.post(), body: Array("part".utf8), endBody: false)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(pump(client, server)).map(\.stream), [stream])
        server.reset(stream: stream, error: NGHTTP2_PROTOCOL_ERROR.rawValue)
        let events = pump(client, server)
        XCTAssertEqual(client.streams[stream]?.resetWith, NGHTTP2_PROTOCOL_ERROR.rawValue)
        XCTAssertEqual(events, [.streamClosed(stream: stream, error: NGHTTP2_PROTOCOL_ERROR.rawValue)])
        XCTAssertTrue(server.protocolErrorResets.isEmpty)
    }

    func testAPingFloodFromAClientThatDoesNotReadEndsTheConnection() {
        let server = HTTP2ServerSession()
        var events: [HTTP2SessionEvent] = []
        var input = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        input.writeBytes([0, 0, 0, 0x04, 0, 0, 0, 0, 0])
        for _ in 0..<1_001 {
            input.writeBytes([0, 0, 8, 0x06, 0, 0, 0, 0, 0] + [UInt8](repeating: 0x2a, count: 8))
        }
        server.receive(input, into: &events)
        XCTAssertEqual(events, [.connectionError(error: NGHTTP2_ENHANCE_YOUR_CALM.rawValue)], "the acks wait in nghttp2, bounded")
        var output = ByteBuffer()
        server.takeOutput(into: &output, events: &events)
        XCTAssertEqual(Self.goAwayError(output), NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        XCTAssertFalse(server.wantsRead || server.wantsWrite)
    }

    func testAHeadOverTheHeaderListSizeIsAnswered431AndTheConnectionGoesOn() {
        let server = HTTP2ServerSession(settings: .init(maxHeaderListSize: 1024))
        let client = HTTP2TestClient()
        pump(client, server)
        XCTAssertEqual(client.serverSettings[Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue)], 1024)
        let big = ("x-big", String(repeating: "a", count: 2000))
        let large = client.request(HTTP2ServerSessionTests.post() + [big], body: Array("ignored".utf8))
        var events = pump(client, server)
        XCTAssertEqual(client.streams[large]?.status, "431")
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events), [])
        XCTAssertTrue(events.isEmpty, "the session handled it all: \(events)")
        let next = client.request(HTTP2ServerSessionTests.get() + [("x-small", "b")])
        events = pump(client, server)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [next])
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).first?.fields["x-small"], ["b"], "HPACK state intact")
    }

    func testAn431StopsAnUploadStillUnderWayWithResetNoError() {
        let server = HTTP2ServerSession(settings: .init(maxHeaderListSize: 1024))
        let client = HTTP2TestClient()
        let big = ("x-big", String(repeating: "a", count: 2000))
        let large = client.request(HTTP2ServerSessionTests.post() + [big], body: Array("more to come".utf8), endBody: false)
        XCTAssertEqual(pump(client, server), [])
        XCTAssertEqual(client.streams[large]?.status, "431")
        XCTAssertEqual(client.streams[large]?.resetWith, NGHTTP2_NO_ERROR.rawValue)
        XCTAssertEqual(client.streams[large]?.closedWith, NGHTTP2_NO_ERROR.rawValue)
    }

    func testTrailersOverTheHeaderListSizeResetTheStream() {
        let server = HTTP2ServerSession(settings: .init(maxHeaderListSize: 1024))
        let client = HTTP2TestClient()
        let stream = client.request(
            HTTP2ServerSessionTests.post(), body: Array("part".utf8), trailers: [("x-big", String(repeating: "a", count: 2000))])
        let events = pump(client, server)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [stream])
        XCTAssertEqual(events.last, .streamClosed(stream: stream, error: NGHTTP2_ENHANCE_YOUR_CALM.rawValue))
        XCTAssertEqual(client.streams[stream]?.resetWith, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
    }

    func testStreamsBeyondTheConcurrentLimitAreRefused() {
        let server = HTTP2ServerSession(settings: .init(maxConcurrentStreams: 2))
        let client = HTTP2TestClient(peerMaxConcurrentStreams: 100)
        let streams = (0..<3).map { client.request(HTTP2ServerSessionTests.get("/\($0)")) }
        let events = pump(client, server)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), Array(streams.prefix(2)))
        XCTAssertEqual(client.streams[streams[2]]?.resetWith, NGHTTP2_REFUSED_STREAM.rawValue)
        XCTAssertNil(client.goAway, "a stream error, not a connection error")
    }

    /// nghttp2 alone would end the connection for a stream over a limit the client has
    /// acknowledged; the session announces the configured limit, gives nghttp2 a higher one,
    /// and refuses the streams in between one by one. (A client on nghttp2 keeps to the limit,
    /// so the frames are written by hand.)
    func testAStreamOverAnAcknowledgedLimitIsRefusedAloneAndTheLimitIsTheConfiguredOne() {
        let server = HTTP2ServerSession(settings: .init(maxConcurrentStreams: 2))
        var events: [HTTP2SessionEvent] = []
        var output = ByteBuffer()
        server.takeOutput(into: &output, events: &events)
        let settings = Self.frames(output).first { $0.type == UInt8(NGHTTP2_SETTINGS.rawValue) }!.payload
        var announced: [UInt16: UInt32] = [:]
        for index in stride(from: 0, to: settings.count, by: 6) {
            let identifier = UInt16(settings[index]) << 8 | UInt16(settings[index + 1])
            announced[identifier] = settings[(index + 2)..<(index + 6)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        XCTAssertEqual(announced[UInt16(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue)], 2)
        var input = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        input.writeBytes([0, 0, 0, 0x04, 0, 0, 0, 0, 0])  // empty SETTINGS
        input.writeBytes([0, 0, 0, 0x04, 0x01, 0, 0, 0, 0])  // the ACK of the server's
        for stream: UInt32 in [1, 3, 5, 7] { input.writeBytes(Self.getFrame(stream: stream, name: "x-n", value: "1")) }
        server.receive(input, into: &events)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [1, 3])
        XCTAssertEqual(events.filter { if case .streamRefused = $0 { true } else { false } }, [
            .streamRefused(stream: 5, firstOnConnection: true), .streamRefused(stream: 7, firstOnConnection: false),
        ])
        server.respond(stream: 1, status: 200, headers: [:], endStream: true)
        output.clear()
        server.takeOutput(into: &output, events: &events)
        let resets = Self.frames(output).filter { $0.type == UInt8(NGHTTP2_RST_STREAM.rawValue) }
        XCTAssertEqual(resets.map(\.stream), [5, 7])
        XCTAssertEqual(resets.first?.payload, [0, 0, 0, UInt8(NGHTTP2_REFUSED_STREAM.rawValue)])
        XCTAssertNil(Self.goAwayError(output), "a stream error, not a connection error")
        events.removeAll()
        server.receive(ByteBuffer(bytes: Self.getFrame(stream: 9, name: "x-n", value: "1")), into: &events)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.stream), [9], "the answered stream made room")
    }
}

/// A seeded generator, so the garbage is the same on every run.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xbf58_476d_1ce4_e5b9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94d0_49bb_1331_11eb
        return mixed ^ (mixed >> 31)
    }
}
