import NIOCore
import NIOHPACK
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// RFC 8441 without sockets: what a stream's first HEADERS opens, and how a WebSocket's stream
/// ends.
final class HTTP2WebSocketStreamTests: XCTestCase {
    private func block(_ fields: [(String, String)]) -> HPACKHeaders {
        HPACKHeaders(fields)
    }

    private let extendedConnect = [(":method", "CONNECT"), (":scheme", "https"), (":authority", "example.com"), (":path", "/chat?room=1")]

    func testOrdinaryRequestsAndAWebSocketConnect() {
        let get = block([(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "/"), ("accept", "*/*")])
        XCTAssertEqual(HTTP2StreamOpening(get, endStream: true), .request)
        XCTAssertEqual(HTTP2StreamOpening(block(extendedConnect + [(":protocol", "websocket")]), endStream: false), .webSocket)
        XCTAssertEqual(HTTP2StreamOpening(block(extendedConnect + [(":protocol", "WebSocket")]), endStream: false), .webSocket)
    }

    func testAPlainConnectIsATunnelAnsweredAsOnHTTP1() {
        let connect = block([(":method", "CONNECT"), (":authority", "example.com:443"), ("user-agent", "x")])
        XCTAssertEqual(HTTP2StreamOpening(connect, endStream: false), .tunnel)
        let rewritten = HTTP2StreamOpening.authorityForm(connect, scheme: "http")
        XCTAssertEqual(rewritten[":path"], ["example.com:443"])
        XCTAssertEqual(rewritten[":scheme"], ["http"])
        XCTAssertEqual(rewritten["user-agent"], ["x"])
    }

    func testAnUnknownProtocolAndAnEndedStreamAreRefused() {
        XCTAssertEqual(
            HTTP2StreamOpening(block(extendedConnect + [(":protocol", "connect-udp")]), endStream: false),
            .refuse(status: 501, reason: "extended CONNECT for an unknown protocol: connect-udp"))
        guard case .refuse(400, _) = HTTP2StreamOpening(block(extendedConnect + [(":protocol", "websocket")]), endStream: true) else {
            return XCTFail("a WebSocket whose client ended its stream must be refused with 400")
        }
    }

    func testTheHandshakeRequestAsTheDelegateSeesIt() throws {
        let headers = block(extendedConnect + [(":protocol", "websocket"), ("sec-websocket-protocol", "chat"), ("origin", "https://example.com")])
        let connection = ConnectionInfo(remoteIP: "127.0.0.1", remotePort: 5000, localPort: 443)
        let request = try XCTUnwrap(HTTP2StreamOpening.request(headers, scheme: "https", connection: connection))
        XCTAssertEqual(request.method, "CONNECT")
        XCTAssertEqual(request.version, "2")
        XCTAssertEqual(request.path, "/chat")
        XCTAssertEqual(String(request.query), "room=1")
        XCTAssertEqual(request.host, "example.com")
        XCTAssertEqual(request.headers.map(\.name), ["host", "sec-websocket-protocol", "origin"])
        XCTAssertNil(HTTP2StreamOpening.request(block([(":path", "no-slash")]), scheme: "https", connection: connection))
    }

    /// The nghttp2 engine classifies from the values its session decoded, through the same
    /// function as NIO's block: same outcome, same size, same handshake request.
    func testTheSessionEngineReadsTheSameValues() throws {
        XCTAssertEqual(HTTP2StreamOpening(method: "GET", protocol: nil, endStream: true), .request)
        XCTAssertEqual(HTTP2StreamOpening(method: "CONNECT", protocol: nil, endStream: false), .tunnel)
        XCTAssertEqual(HTTP2StreamOpening(method: "CONNECT", protocol: "websocket", endStream: false), .webSocket)
        XCTAssertEqual(
            HTTP2StreamOpening(method: "CONNECT", protocol: "connect-udp", endStream: false),
            .refuse(status: 501, reason: "extended CONNECT for an unknown protocol: connect-udp"))
        let sent = extendedConnect + [(":protocol", "websocket"), ("origin", "https://example.com")]
        let fields = HTTPHeaders([("origin", "https://example.com")])
        let pseudo: KeyValuePairs<String, String?> = [
            ":method": "CONNECT", ":scheme": "https", ":authority": "example.com", ":path": "/chat?room=1",
            ":protocol": "websocket",
        ]
        XCTAssertEqual(HTTP2StreamOpening.size(pseudo: pseudo, fields: fields), HTTP2StreamOpening.size(of: block(sent)))
        let connection = ConnectionInfo(remoteIP: "127.0.0.1", remotePort: 5000, localPort: 443)
        let request = try XCTUnwrap(
            HTTP2StreamOpening.request(
                path: "/chat?room=1", authority: "example.com", fields: fields, scheme: "https", connection: connection))
        XCTAssertEqual(request.headers.map(\.name), ["host", "origin"])
        XCTAssertEqual(request.path, "/chat")
    }

    func testAServerCloseEndsTheStreamAndWaitsForTheClient() {
        var state = HTTP2WebSocketStreamState()
        XCTAssertFalse(state.refusesWrites)
        XCTAssertEqual(state.closeRequested(), .endStreamAndWait)
        XCTAssertTrue(state.refusesWrites, "nothing may follow END_STREAM")
        XCTAssertEqual(state.closeRequested(), .none, "the close after the grace's own is the same close")
        XCTAssertEqual(state.graceExpired(), .reset, "a client that never ends its side gets RST_STREAM")
    }

    func testAClientThatEndsInTimeIsNotReset() {
        var state = HTTP2WebSocketStreamState()
        XCTAssertEqual(state.closeRequested(), .endStreamAndWait)
        XCTAssertEqual(state.clientEndedStream(), .none, "both sides ended: the stream is closed")
        XCTAssertEqual(state.graceExpired(), .none)
    }

    func testAClientEndingFirstEndsTheWebSocket() {
        var state = HTTP2WebSocketStreamState()
        XCTAssertEqual(state.clientEndedStream(), .endStream, "like a TCP connection's end")
        XCTAssertEqual(state.closeRequested(), .none)
        XCTAssertEqual(state.graceExpired(), .none)

        XCTAssertEqual(state.clientEndedStream(), .none, "trailers after the end change nothing")
    }

}
