import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// A delegate that notes the heads it is asked to stream the body of, and streams none.
private final class AskedDelegate: ServerDelegate {
    var streamsBodylessRequests = false
    var asked: [String] = []

    func streamedBodyLimit(for head: HTTPRequestHead) -> Int? {
        asked.append(head.uri)
        return nil
    }

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        responder.respond(.plain(200, "ok"))
    }
}

/// Which HTTP/1.1 heads the delegate is asked about (`ServerDelegate.streamedBodyLimit`): a
/// head without Content-Length or Transfer-Encoding only when it streams bodyless requests.
final class HTTP1StreamedBodyLimitTests: XCTestCase {
    func testHeadsWithoutBodyFieldsAreAskedOnlyWhenTheDelegateStreamsBodylessRequests() throws {
        for streamsBodyless in [false, true] {
            let delegate = AskedDelegate()
            delegate.streamsBodylessRequests = streamsBodyless
            let connection = try HTTP1TestConnection(delegate: delegate)
            defer { try? connection.close() }
            // The first request passes NIO's upgrade handler, without the parser's framing:
            // it is always asked.
            for request in [
                "GET /first HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /get HTTP/1.1\r\nHost: x\r\n\r\n",
                "POST /empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                "POST /length HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
                "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ] {
                try connection.channel.writeInbound(ByteBuffer(string: request))
            }
            XCTAssertEqual(try connection.written().components(separatedBy: "HTTP/1.1 200 OK").count - 1, 5)
            let expected = streamsBodyless ? ["/first", "/get", "/empty", "/length", "/chunked"] : ["/first", "/empty", "/length", "/chunked"]
            XCTAssertEqual(delegate.asked, expected, "streamsBodylessRequests: \(streamsBodyless)")
        }
    }
}
