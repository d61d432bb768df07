import CNGHTTP2
import Foundation
import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// The h2c upgrade (RFC 7540 section 3.2) on HTTP2ServerSession against a real nghttp2 client
/// that upgraded too (`nghttp2_session_upgrade2` on both sides), and the checks of the
/// HTTP/1.1 request that asks for it (H2CUpgrade).
final class HTTP2ServerSessionUpgradeTests: XCTestCase {
    static func setting(_ id: nghttp2_settings_id, _ value: UInt32) -> nghttp2_settings_entry {
        nghttp2_settings_entry(settings_id: Int32(id.rawValue), value: value)
    }

    /// The SETTINGS payload a client puts, base64url-encoded, in HTTP2-Settings; packed here,
    /// as nghttp2's packer refuses values out of range.
    static func payload(_ entries: [nghttp2_settings_entry]) -> [UInt8] {
        entries.flatMap { entry in
            [UInt8(entry.settings_id >> 8), UInt8(entry.settings_id & 0xFF)]
                + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: entry.value >> $0) }
        }
    }

    /// A client that sent `entries` in HTTP2-Settings (and the same in its first SETTINGS, as
    /// curl does), and a server upgraded with them.
    static func upgraded(
        _ entries: [nghttp2_settings_entry], head: Bool = false, settings: HTTP2ServerSession.Settings = .init(),
        peerMaxConcurrentStreams: UInt32? = nil
    ) -> (HTTP2TestClient, HTTP2ServerSession) {
        let client = HTTP2TestClient(peerMaxConcurrentStreams: peerMaxConcurrentStreams, settings: entries)
        let payload = payload(entries)
        precondition(nghttp2_session_upgrade2(client.session, payload, payload.count, head ? 1 : 0, nil) == 0)
        let server = HTTP2ServerSession(settings: settings)
        XCTAssertTrue(server.upgrade(settings: payload, headRequest: head))
        return (client, server)
    }

    func testTheServerPrefaceComesFirstThenStreamOneCarriesTheAnswer() {
        let (client, server) = Self.upgraded([Self.setting(NGHTTP2_SETTINGS_ENABLE_PUSH, 0)])
        XCTAssertTrue(server.respond(stream: 1, status: 200, headers: ["content-type": "text/plain"], endStream: false))
        XCTAssertTrue(server.sendData(stream: 1, ByteBuffer(string: "upgraded"), endStream: true))
        var output = ByteBuffer()
        var events: [HTTP2SessionEvent] = []
        server.takeOutput(into: &output, events: &events)
        XCTAssertEqual(output.getInteger(at: 3, as: UInt8.self), UInt8(NGHTTP2_SETTINGS.rawValue), "SETTINGS first")
        XCTAssertEqual(output.getInteger(at: 5, as: UInt32.self), 0, "on stream 0")
        client.receive(output)
        let answered = events + pump(client, server)
        XCTAssertTrue(answered.contains(.streamClosed(stream: 1, error: 0)))
        XCTAssertEqual(client.streams[1]?.status, "200")
        XCTAssertEqual(String(decoding: client.streams[1]?.body ?? [], as: UTF8.self), "upgraded")
        XCTAssertEqual(client.streams[1]?.closedWith, 0)
        XCTAssertNil(client.goAway, "the client's preface was accepted")
    }

    func testTheClientsHTTP2SettingsApplyBeforeItsFirstFrame() {
        let (_, server) = Self.upgraded([
            Self.setting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000), Self.setting(NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 20_000),
        ])
        XCTAssertEqual(nghttp2_session_get_remote_settings(server.session, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 1000)
        XCTAssertEqual(nghttp2_session_get_remote_settings(server.session, NGHTTP2_SETTINGS_MAX_FRAME_SIZE), 20_000)
    }

    func testMoreStreamsFollowOnTheUpgradedConnection() {
        let (client, server) = Self.upgraded([])
        server.respond(stream: 1, status: 204, headers: [:], endStream: true)
        pump(client, server)
        let next = client.request(HTTP2ServerSessionTests.post(), body: Array("more".utf8))
        XCTAssertEqual(next, 3, "stream 1 was the upgrade's")
        let events = pump(client, server)
        XCTAssertEqual(HTTP2ServerSessionTests.heads(events).map(\.path), ["/upload"])
        XCTAssertEqual(HTTP2ServerSessionTests.body(events, stream: 3).bytes, Array("more".utf8))
        server.respond(stream: 3, status: 200, headers: [:], endStream: true)
        pump(client, server)
        XCTAssertEqual(client.streams[1]?.status, "204")
        XCTAssertEqual(client.streams[3]?.status, "200")
    }

    /// Stream 1 counts against SETTINGS_MAX_CONCURRENT_STREAMS like any request, and its
    /// close gives its place back (once). The client sends its second request before it has
    /// seen the server's limit.
    func testStreamOneCountsAgainstTheStreamLimit() {
        let (client, server) = Self.upgraded([], settings: .init(maxConcurrentStreams: 1), peerMaxConcurrentStreams: 100)
        XCTAssertEqual(server.openRequests, 1)
        let refused = client.request(HTTP2ServerSessionTests.get("/refused"))
        XCTAssertEqual(HTTP2ServerSessionTests.heads(pump(client, server)), [], "stream 1 is still open")
        XCTAssertEqual(client.streams[refused]?.resetWith, NGHTTP2_REFUSED_STREAM.rawValue)
        server.respond(stream: 1, status: 204, headers: [:], endStream: true)
        pump(client, server)
        XCTAssertEqual(server.openRequests, 0)
        let next = client.request(HTTP2ServerSessionTests.get("/next"))
        XCTAssertEqual(HTTP2ServerSessionTests.heads(pump(client, server)).map(\.stream), [next])
        XCTAssertEqual(server.openRequests, 1)
    }

    func testAHeadRequestsAnswerHasNoContentThoughItSaysALength() {
        let (client, server) = Self.upgraded([], head: true)
        server.respond(stream: 1, status: 200, headers: ["content-length": "5"], endStream: true)
        pump(client, server)
        XCTAssertEqual(client.streams[1]?.status, "200")
        XCTAssertEqual(client.streams[1]?.closedWith, 0, "content-length 5 without content is right for HEAD")
    }

    func testSettingsItDoesNotAcceptLeaveTheSessionAsItWas() {
        let server = HTTP2ServerSession()
        XCTAssertFalse(server.upgrade(settings: [0, 4, 0, 0], headRequest: false), "not whole settings")
        for (id, value) in [
            (NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 100), (NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 24), (NGHTTP2_SETTINGS_ENABLE_PUSH, 2),
            (NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31), (NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 2),
        ] as [(nghttp2_settings_id, UInt32)] {
            XCTAssertFalse(server.upgrade(settings: Self.payload([Self.setting(id, value)]), headRequest: false), "\(id) \(value)")
        }
        XCTAssertFalse(server.respond(stream: 1, status: 200, headers: [:], endStream: true), "no stream 1")
        let client = HTTP2TestClient()
        let stream = client.request(HTTP2ServerSessionTests.get())
        XCTAssertEqual(HTTP2ServerSessionTests.heads(pump(client, server)).map(\.stream), [stream], "prior knowledge still works")
        XCTAssertNil(client.goAway)
    }

    // MARK: The HTTP/1.1 request

    static func request(_ fields: [(String, String)], method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: "/path?q=1", headers: HTTPHeaders(fields))
    }

    func testHTTP2SettingsIsBase64urlOfWholeSettings() {
        let payload = Self.payload([
            Self.setting(NGHTTP2_SETTINGS_ENABLE_PUSH, 0), Self.setting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0xFF_FFFF),
        ])
        let base64url = Data(payload).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        XCTAssertTrue(base64url.contains("_") || base64url.contains("-"), "the test covers the URL alphabet")
        XCTAssertEqual(H2CUpgrade.settingsPayload(of: Self.request([("HTTP2-Settings", base64url)])), payload)
        XCTAssertEqual(H2CUpgrade.settingsPayload(of: Self.request([("HTTP2-Settings", "")])), [], "no settings")
        let maxFrameTooSmall = Data(Self.payload([Self.setting(NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 100)])).base64EncodedString()
        let pushTwo = Data(Self.payload([Self.setting(NGHTTP2_SETTINGS_ENABLE_PUSH, 2)])).base64EncodedString()
        for bad in ["AAIAAA", "AAIAAAAA!", "AAIAAAAA AAIAAAAA", "A", maxFrameTooSmall, pushTwo] {
            XCTAssertNil(H2CUpgrade.settingsPayload(of: Self.request([("HTTP2-Settings", bad)])), bad)
        }
        XCTAssertNil(H2CUpgrade.settingsPayload(of: Self.request([])), "none")
        XCTAssertNil(
            H2CUpgrade.settingsPayload(of: Self.request([("HTTP2-Settings", ""), ("HTTP2-Settings", "")])), "two")
    }

    func testTheRequestBecomesStreamOneWithoutItsConnectionFields() {
        let head = H2CUpgrade(
            request: Self.request(
                [
                    ("Host", "example.com:8080"), ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                    ("HTTP2-Settings", ""), ("User-Agent", "curl"), ("Accept", "*/*"), ("TE", "trailers"),
                ], method: .HEAD),
            settings: []
        ).streamHead
        XCTAssertEqual(
            head,
            HTTP2RequestHead(
                stream: 1, method: "HEAD", scheme: "http", authority: "example.com:8080", path: "/path?q=1", protocol: nil,
                fields: ["user-agent": "curl", "accept": "*/*"], endStream: true))
    }
}
