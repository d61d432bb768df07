import CNGHTTP2
import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// HTTP2ServerSession against a real nghttp2 client, both in memory: requests, answers,
/// flow control both ways, trailers, 1xx, resets.
final class HTTP2ServerSessionTests: XCTestCase {
    static func get(_ path: String = "/") -> [(String, String)] {
        [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"), (":path", path)]
    }

    static func post(_ path: String = "/upload") -> [(String, String)] {
        [(":method", "POST"), (":scheme", "https"), (":authority", "example.com"), (":path", path)]
    }

    static func heads(_ events: [HTTP2SessionEvent]) -> [HTTP2RequestHead] {
        events.compactMap { if case .requestHead(let head) = $0 { head } else { nil } }
    }

    static func body(_ events: [HTTP2SessionEvent], stream: Int32) -> (bytes: [UInt8], ended: Bool) {
        var bytes: [UInt8] = []
        var ended = false
        for case .requestBody(stream, let chunk, let end) in events {
            XCTAssertFalse(ended, "content after the end")
            bytes += chunk.readableBytesView
            ended = end
        }
        return (bytes, ended)
    }

    func testAGetIsReportedWithItsPseudoHeadersAndItsAnswerArrivesWhole() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(Self.get("/hello?x=1") + [("accept", "text/plain"), ("cookie", "a=1"), ("cookie", "b=2")])
        let events = pump(client, server)
        let head = HTTP2RequestHead(
            stream: stream, method: "GET", scheme: "https", authority: "example.com", path: "/hello?x=1",
            protocol: nil, fields: ["accept": "text/plain", "cookie": "a=1", "cookie": "b=2"], endStream: true)
        XCTAssertEqual(Self.heads(events), [head])

        let fields: HTTPHeaders = [
            "Content-Type": "text/plain", "Connection": "close", "Transfer-Encoding": "chunked", "Keep-Alive": "5",
            "Upgrade": "h2c", "Proxy-Connection": "x", "TE": "trailers",
        ]
        XCTAssertTrue(server.respond(stream: stream, status: 200, headers: fields, endStream: false))
        XCTAssertTrue(server.sendData(stream: stream, ByteBuffer(string: "hello, "), endStream: false))
        XCTAssertEqual(server.queuedBytes(stream: stream), 7)
        XCTAssertTrue(server.sendData(stream: stream, ByteBuffer(string: "world"), endStream: true))
        let answered = pump(client, server)
        XCTAssertTrue(answered.contains(.sendQueueDrained(stream: stream)))
        XCTAssertTrue(answered.contains(.streamClosed(stream: stream, error: 0)))
        XCTAssertEqual(server.queuedBytes(stream: stream), 0)
        let seen = client.streams[stream]!
        XCTAssertEqual(seen.headBlocks.count, 1)
        XCTAssertEqual(seen.headBlocks[0].map(\.name), [":status", "content-type"], "lowercased, connection-specific fields dropped")
        XCTAssertEqual(seen.status, "200")
        XCTAssertEqual(String(decoding: seen.body, as: UTF8.self), "hello, world")
        XCTAssertEqual(seen.closedWith, 0)
        XCTAssertFalse(server.sendData(stream: stream, ByteBuffer(string: "late"), endStream: true), "the stream is closed")
    }

    func testAStreamingAnswerWaitsForItsContentAndResumesWithIt() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(Self.get("/events"))
        pump(client, server)
        server.respond(stream: stream, status: 200, headers: ["content-type": "text/event-stream"], endStream: false)
        XCTAssertEqual(pump(client, server), [], "the head goes, the provider defers")
        XCTAssertEqual(client.streams[stream]?.status, "200")
        XCTAssertEqual(client.streams[stream]?.body, [])
        for chunk in ["data: 1\n\n", "data: 2\n\n"] {
            server.sendData(stream: stream, ByteBuffer(string: chunk), endStream: false)
            XCTAssertEqual(pump(client, server), [.sendQueueDrained(stream: stream)])
        }
        XCTAssertEqual(String(decoding: client.streams[stream]!.body, as: UTF8.self), "data: 1\n\ndata: 2\n\n")
        XCTAssertNil(client.streams[stream]?.closedWith)
        server.sendData(stream: stream, ByteBuffer(), endStream: true)
        XCTAssertEqual(pump(client, server), [.sendQueueDrained(stream: stream), .streamClosed(stream: stream, error: 0)])
        XCTAssertEqual(client.streams[stream]?.closedWith, 0)
    }

    func testAPostBodyInSeveralDataFramesArrivesAsContentEventsWithItsEnd() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let upload = (0..<40_000).map { UInt8(truncatingIfNeeded: $0) }
        let stream = client.request(Self.post() + [("content-length", "40000")], body: upload)
        let events = pump(client, server)
        XCTAssertEqual(Self.heads(events).map(\.endStream), [false])
        let contentEvents = events.filter { if case .requestBody = $0 { true } else { false } }
        XCTAssertGreaterThanOrEqual(contentEvents.count, 3, "16 KiB frames")
        let body = Self.body(events, stream: stream)
        XCTAssertEqual(body.bytes, upload)
        XCTAssertTrue(body.ended)
        server.consume(stream: stream, bytes: upload.count)
        server.respond(stream: stream, status: 204, headers: [:], endStream: true)
        pump(client, server)
        XCTAssertEqual(client.streams[stream]?.status, "204")
    }

    func testAHundredConcurrentStreamsAreAnsweredOutOfOrder() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let streams = (0..<100).map { client.request(Self.get("/\($0)")) }
        let heads = Self.heads(pump(client, server))
        XCTAssertEqual(heads.map(\.stream), streams)
        XCTAssertEqual(heads.map(\.path), (0..<100).map { "/\($0)" })
        for (index, stream) in streams.enumerated().reversed() {
            server.respond(stream: stream, status: 200, headers: [:], endStream: false)
            server.sendData(stream: stream, ByteBuffer(string: "answer \(index)"), endStream: true)
            if index % 7 == 0 { pump(client, server) }
        }
        pump(client, server)
        for (index, stream) in streams.enumerated() {
            XCTAssertEqual(String(decoding: client.streams[stream]!.body, as: UTF8.self), "answer \(index)")
            XCTAssertEqual(client.streams[stream]?.closedWith, 0)
        }
    }

    func testALargeAnswerFlowsOnlyAsTheClientOpensItsWindow() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient(manualWindow: true)
        let stream = client.request(Self.get("/big"))
        pump(client, server)
        let answer = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        server.respond(stream: stream, status: 200, headers: ["content-length": "\(answer.count)"], endStream: false)
        server.sendData(stream: stream, ByteBuffer(bytes: answer), endStream: true)
        var received = 0
        var rounds = 0
        while received < answer.count {
            let events = pump(client, server)
            let now = client.streams[stream]!.body.count
            XCTAssertLessThanOrEqual(now - received, 65_535, "no more than the client's window per opening")
            XCTAssertGreaterThan(now, received, "the window opened, content flowed")
            XCTAssertEqual(server.queuedBytes(stream: stream), answer.count - now)
            if now < answer.count {
                XCTAssertFalse(events.contains(.sendQueueDrained(stream: stream)))
            }
            client.consume(stream: stream, bytes: now - received)
            received = now
            rounds += 1
        }
        XCTAssertGreaterThanOrEqual(rounds, 16)
        XCTAssertEqual(client.streams[stream]!.body, answer)
        XCTAssertEqual(client.streams[stream]?.closedWith, 0)
    }

    func testRequestContentStopsAtTheWindowUntilTheCallerConsumesIt() {
        let server = HTTP2ServerSession(settings: .init(initialWindowSize: 65_535))
        let client = HTTP2TestClient()
        let upload = [UInt8](repeating: 7, count: 200_000)
        let stream = client.request(Self.post(), body: upload)
        var events = pump(client, server)
        XCTAssertEqual(Self.body(events, stream: stream).bytes.count, 65_535, "the stream's window, not more")
        XCTAssertEqual(Self.body(pump(client, server), stream: stream).bytes.count, 0, "nothing until consumed")
        var total = 65_535
        while total < upload.count {
            server.consume(stream: stream, bytes: 65_535)
            events = pump(client, server)
            let got = Self.body(events, stream: stream)
            XCTAssertLessThanOrEqual(got.bytes.count, 65_535)
            total += got.bytes.count
            if total == upload.count { XCTAssertTrue(got.ended) }
        }
        XCTAssertEqual(total, upload.count)
    }

    func testTrailersFollowTheContentBothWays() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(Self.get())
        pump(client, server)
        server.respond(stream: stream, status: 200, headers: ["trailer": "grpc-status"], endStream: false)
        server.sendData(stream: stream, ByteBuffer(string: "payload"), endStream: false)
        XCTAssertTrue(server.sendTrailers(stream: stream, ["Grpc-Status": "0"]))
        XCTAssertFalse(server.sendData(stream: stream, ByteBuffer(string: "x"), endStream: false), "the answer has ended")
        pump(client, server)
        let seen = client.streams[stream]!
        XCTAssertEqual(String(decoding: seen.body, as: UTF8.self), "payload")
        XCTAssertEqual(seen.headBlocks.count, 2)
        XCTAssertEqual(seen.headBlocks[1].map(\.name), ["grpc-status"])
        XCTAssertEqual(seen.closedWith, 0)
    }

    func testRequestTrailersEndTheRequest() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(Self.post() + [("te", "trailers")], body: Array("part".utf8), trailers: [("x-checksum", "abc")])
        let events = pump(client, server)
        XCTAssertEqual(Self.heads(events).first?.fields["te"], ["trailers"], "the one te value RFC 9113 allows")
        XCTAssertEqual(Self.body(events, stream: stream).bytes, Array("part".utf8))
        XCTAssertFalse(Self.body(events, stream: stream).ended, "the trailers end it")
        XCTAssertEqual(events.last, .requestTrailers(stream: stream, ["x-checksum": "abc"]))
    }

    func testAnInformationalHeadPrecedesTheAnswer() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(Self.post() + [("expect", "100-continue")], body: Array("data".utf8))
        pump(client, server)
        XCTAssertTrue(server.informational(stream: stream, status: 103, headers: ["link": "</style.css>; rel=preload"]))
        XCTAssertFalse(server.informational(stream: stream, status: 200, headers: [:]), "not a 1xx")
        server.respond(stream: stream, status: 201, headers: [:], endStream: true)
        XCTAssertFalse(server.informational(stream: stream, status: 100, headers: [:]), "after the answer")
        pump(client, server)
        let seen = client.streams[stream]!
        XCTAssertEqual(seen.headBlocks.map { $0.first?.value }, ["103", "201"])
        XCTAssertEqual(seen.status, "201")
    }

    func testAClientResetMidAnswerDropsTheQueuedContent() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient(manualWindow: true)
        let stream = client.request(Self.get())
        pump(client, server)
        server.respond(stream: stream, status: 200, headers: [:], endStream: false)
        server.sendData(stream: stream, ByteBuffer(repeating: 1, count: 200_000), endStream: false)
        pump(client, server)
        XCTAssertGreaterThan(server.queuedBytes(stream: stream), 100_000)
        nghttp2_submit_rst_stream(client.session, 0, stream, NGHTTP2_CANCEL.rawValue)
        let events = pump(client, server)
        XCTAssertEqual(
            events,
            [.streamReset(stream: stream, error: NGHTTP2_CANCEL.rawValue), .streamClosed(stream: stream, error: NGHTTP2_CANCEL.rawValue)])
        XCTAssertEqual(server.queuedBytes(stream: stream), 0)
        XCTAssertFalse(server.sendData(stream: stream, ByteBuffer(string: "more"), endStream: true))
    }

    func testAServerResetAndAGoAwayEndTheConnectionCleanly() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let first = client.request(Self.get())
        let second = client.request(Self.get())
        pump(client, server)
        server.reset(stream: first, error: NGHTTP2_INTERNAL_ERROR.rawValue)
        server.goAway(error: NGHTTP2_NO_ERROR.rawValue)
        let events = pump(client, server)
        XCTAssertEqual(events, [.streamClosed(stream: first, error: NGHTTP2_INTERNAL_ERROR.rawValue)])
        XCTAssertEqual(client.streams[first]?.resetWith, NGHTTP2_INTERNAL_ERROR.rawValue)
        XCTAssertEqual(client.goAway?.lastStream, second)
        XCTAssertTrue(server.wantsRead, "the second stream is still open")
        server.respond(stream: second, status: 200, headers: [:], endStream: true)
        pump(client, server)
        XCTAssertEqual(client.streams[second]?.status, "200")
        XCTAssertFalse(server.wantsRead || server.wantsWrite, "GOAWAY sent and every stream done")
    }

    /// RFC 9113 section 6.8: GOAWAY with the highest identifier and a PING; the PING's return
    /// brings the GOAWAY that names the last stream, which is still answered.
    func testAGracefulStopSendsTwoGoAwaysAroundAPing() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(Self.get())
        pump(client, server)
        server.beginShutdown()
        var output = ByteBuffer()
        var events: [HTTP2SessionEvent] = []
        server.takeOutput(into: &output, events: &events)
        client.receive(output)
        XCTAssertEqual(client.goAway?.lastStream, Int32.max, "the notice names the highest stream")
        XCTAssertEqual(pump(client, server), [])
        XCTAssertEqual(client.goAway?.lastStream, stream, "the PING came back: the last stream is named")
        XCTAssertTrue(server.wantsRead, "the stream is still open")
        server.respond(stream: stream, status: 200, headers: [:], endStream: true)
        pump(client, server)
        XCTAssertEqual(client.streams[stream]?.status, "200")
        XCTAssertFalse(server.wantsRead || server.wantsWrite)
        server.finishShutdown()
        XCTAssertFalse(server.wantsWrite, "a second finish sends nothing")
    }

    func testTheCallersOwnGoAwayIsNotReportedAsAConnectionError() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        pump(client, server)
        server.goAway(error: NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        XCTAssertEqual(pump(client, server), [])
        XCTAssertEqual(client.goAway?.error, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        XCTAssertFalse(server.wantsRead || server.wantsWrite)
    }

    func testAPushPromiseIsAnsweredOnThePromisedStreamUnlessTheClientDisabledPush() {
        let server = HTTP2ServerSession()
        let client = HTTP2TestClient()
        let stream = client.request(Self.get())
        pump(client, server)
        let promised = server.push(
            onStream: stream, method: "GET", path: "/style.css", authority: "example.com", scheme: "https", headers: [:])
        XCTAssertEqual(promised, 2)
        server.respond(stream: promised!, status: 200, headers: [:], endStream: false)
        server.sendData(stream: promised!, ByteBuffer(string: "body{}"), endStream: true)
        server.respond(stream: stream, status: 200, headers: [:], endStream: true)
        pump(client, server)
        XCTAssertEqual(client.streams[stream]?.promised, [2])
        XCTAssertEqual(String(decoding: client.streams[2]!.body, as: UTF8.self), "body{}")

        let pushOff = nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0)
        let noPush = HTTP2TestClient(settings: [pushOff])
        let other = HTTP2ServerSession()
        let request = noPush.request(Self.get())
        pump(noPush, other)
        XCTAssertNil(other.push(onStream: request, method: "GET", path: "/a", authority: "example.com", scheme: "https", headers: [:]))
    }
}
