import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// A forwarded answer's fields copied as HTTP/1.1 lines make the same head, byte for byte, as
/// the header table the hook path builds, whatever hop-by-hop, server-owned or framing fields
/// the upstream sent.
final class ProxyFieldLinesTests: XCTestCase {
    private static let heads = [
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 06:00:00 GMT\r\nContent-Type: text/plain\r\n"
            + "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: x-conn, Keep-Alive , CLOSE,,X-Other\r\nX-Conn: 1\r\nx-other: 2\r\nKeep-Alive: a\r\n"
            + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nVia: 1.0 other\r\n\r\n",
        "HTTP/1.1 404 Not Found\r\nvia: 1.0 a\r\nX-A:no-space\nX-B:   padded \t\r\nVIA: 1.1 b\r\nProxy-Authenticate: x\r\n"
            + "Proxy-Connection: y\r\nTE: trailers\r\nTrailer: x-sum\r\nUpgrade: h2c\r\nETag: \"x\"\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"abc\"\r\nSERVER: apache\r\nDATE: now\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-Empty:\r\n\r\n",
        "HTTP/1.1 201 Created\r\nConnection: content-length, Date\r\nContent-Length: 4\r\nLocation: /a\r\nForwarded: for=x\r\n"
            + "X-Forwarded-For: 1.2.3.4\r\nHost: h\r\n\r\n",
        "HTTP/1.0 299 Custom\r\nContent-Type: text/html\r\nContent-Length: 2000\r\nVary: Origin\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
    ]

    private func head(_ text: String, isHead: Bool = false) throws -> OutboundResponseHead {
        var reader = HTTP1ResponseReader(maxBodySize: 0, isHead: isHead, streams: true)
        var buffer = ByteBuffer(string: text)
        guard case .headArrived(let head) = try reader.read(&buffer) else {
            XCTFail("no head in \(text)")
            throw CancellationError()
        }
        return head
    }

    /// The head HTTPExchangeHandler writes: from a header table (`lines` nil) or from lines.
    private func written(
        _ head: OutboundResponseHead, headers: HTTPHeaders, lines: HeadFieldLines?, bodyLength: Int?, headOnly: Bool,
        version: HTTPVersion = .http1_1
    ) -> String {
        let status = HTTPResponseStatus(statusCode: head.status)
        var fields = ServerOwnedFields(date: "Mon, 07 Dec 2026 06:30:00 GMT")
        if let bodyLength, !status.forbidsBody, !(headOnly && headers.contains(name: "content-length")) {
            fields.contentLength = bodyLength
        }
        fields.chunked = bodyLength == nil && version == .http1_1 && !status.forbidsBody && !headers.contains(name: "content-length")
        var out = ByteBuffer()
        HTTP1ResponseSerializer.writeHead(status: head.status, version: version, headers: headers, fields: fields, fieldLines: lines, into: &out)
        return String(buffer: out)
    }

    /// The lines as `HTTP1ResponseSerializer.writeHead` writes them.
    private func text(_ lines: ProxyHeaders.ResponseFieldLines) -> String {
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: lines.maximumSize) { raw in
            var out = ByteCursor(raw)
            lines.write(into: &out)
            return out.count
        }
        return String(buffer: buffer)
    }

    private func framing(_ length: String?) -> HTTPHeaders {
        length.map { ["content-length": $0] } ?? [:]
    }

    func testAWholeAnswerGetsTheSameHeadAsFromAHeaderTable() throws {
        for text in Self.heads {
            for via in [false, true] {
                for headOnly in [false, true] {
                    let head = try head(text, isHead: headOnly)
                    let headers = ProxyHeaders.responseHeaders(head, via: via)
                    let keepsLength = headOnly || HTTPResponseStatus(statusCode: head.status).forbidsBody
                    let fields = ProxyHeaders.ResponseFieldLines(head, via: via, keepsLength: keepsLength)
                    let bodyLength = headOnly ? 0 : 5
                    XCTAssertEqual(
                        written(head, headers: framing(fields.length), lines: .proxied(fields), bodyLength: bodyLength, headOnly: headOnly),
                        written(head, headers: headers, lines: nil, bodyLength: bodyLength, headOnly: headOnly),
                        "\(text) via \(via) HEAD \(headOnly)")
                }
            }
        }
    }

    func testAStreamedAnswerGetsTheSameHeadAndFraming() throws {
        for text in Self.heads {
            for version in [HTTPVersion.http1_1, .http1_0] {
                let head = try head(text)
                let headers = ProxyHeaders.responseHeaders(head, via: true)
                let fields = ProxyHeaders.ResponseFieldLines(head, via: true, keepsLength: true)
                XCTAssertEqual(
                    written(head, headers: framing(fields.length), lines: .proxied(fields), bodyLength: nil, headOnly: false, version: version),
                    written(head, headers: headers, lines: nil, bodyLength: nil, headOnly: false, version: version), text)
            }
        }
    }

    func testTheLinesDropWhatTheServerOwnsAndKeepTheRestInOrder() throws {
        let head = try head(Self.heads[1])
        let whole = ProxyHeaders.ResponseFieldLines(head, via: true, keepsLength: false)
        XCTAssertEqual(text(whole), "Set-Cookie: a\r\nSet-Cookie: b\r\nvia: 1.0 other, 1.1 moonwire\r\n")
        XCTAssertNil(whole.length, "a chunked answer's length is not its own")
        let nginx = ProxyHeaders.ResponseFieldLines(try self.head(Self.heads[0]), via: false, keepsLength: true)
        XCTAssertEqual(text(nginx), "Content-Type: text/plain\r\nContent-Length: 5\r\n")
        XCTAssertEqual(nginx.length, "5")
    }

    func testAHeadWithBytesAboveASCIIIsLeftToTheHeaderTable() throws {
        var bytes = ByteBuffer(string: "HTTP/1.1 200 OK\r\nX-Name: caf")
        bytes.writeBytes([0xE9, 0xFF])
        bytes.writeString("\r\n\r\n")
        var reader = HTTP1ResponseReader(maxBodySize: 0, isHead: false, streams: true)
        guard case .headArrived(let head) = try reader.read(&bytes) else { return XCTFail("no head") }
        XCTAssertFalse(ProxyHeaders.ResponseFieldLines.isASCII(head))
    }
}
