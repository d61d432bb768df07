import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// The reverse proxy's parts that need no socket: the streaming reader hands on the head at
/// once and the body as it comes; the request head is framed anew with hop-by-hop fields gone
/// and the client's address added; the answer's fields lose their hop-by-hop fields; a group
/// takes turns and leaves a failed server out for its time.
final class ReverseProxyTests: XCTestCase {
    private func request(_ method: String = "GET", uri: String = "/a?b", headers: HTTPHeaders, body: String = "") -> HTTPRequest {
        HTTPRequest(
            method: method, uri: uri, version: "1.1", scheme: "http", headers: headers, body: ByteBuffer(string: body),
            connection: ConnectionInfo(remoteIP: "::1", remotePort: 5, localPort: 80))!
    }

    func testAStreamingReaderHandsOnTheHeadThenEachPiece() throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        for step in [1, 3, 10, 1000] {
            var reader = HTTP1ResponseReader(maxBodySize: 0, isHead: false, streams: true)
            var buffer = ByteBuffer()
            var heads = 0
            var body = ""
            var ended = false
            let bytes = Array(text.utf8)
            for start in stride(from: 0, to: bytes.count, by: step) {
                buffer.writeBytes(bytes[start..<min(bytes.count, start + step)])
                reading: while true {
                    let progress = try reader.read(&buffer)
                    body += String(buffer: reader.takeBody())
                    switch progress {
                    case .headArrived(let head):
                        XCTAssertEqual(head.status, 200)
                        heads += 1
                    case .needMore: break reading
                    case .interim: XCTFail("no interim head was sent")
                    case .complete(_, _, let reusable):
                        XCTAssertTrue(reusable)
                        ended = true
                        break reading
                    }
                }
            }
            XCTAssertEqual(heads, 1, "step \(step)")
            XCTAssertEqual(body, "hello world", "step \(step)")
            XCTAssertTrue(ended, "step \(step)")
        }
    }

    func testTheRequestHeadIsFramedAgainWithoutHopByHopFields() throws {
        let headers: HTTPHeaders = [
            "Host": "front.test", "Connection": "keep-alive, X-Private", "X-Private": "1", "Keep-Alive": "timeout=5",
            "TE": "gzip", "Transfer-Encoding": "chunked", "Content-Length": "99", "Proxy-Authorization": "x",
            "Upgrade": "h2c", "Expect": "100-continue", "X-Forwarded-For": "10.0.0.9", "Accept": "*/*",
        ]
        var target = ProxyTarget(url: OutboundURL("http://10.0.0.5:8080")!, target: "/v1/a?b")
        target.setHeaders = [("X-Set", "yes")]
        target.removeHeaders = ["accept"]
        let head = String(buffer: ProxyHeaders.requestHead(request("POST", headers: headers, body: "four"), target, framing: .length(4)))
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines.first, "POST /v1/a?b HTTP/1.1")
        XCTAssertTrue(lines.contains("host: 10.0.0.5:8080"))
        XCTAssertTrue(lines.contains("x-forwarded-for: 10.0.0.9, ::1"))
        XCTAssertTrue(lines.contains("x-forwarded-proto: http"))
        XCTAssertTrue(lines.contains("x-forwarded-host: front.test"))
        XCTAssertTrue(lines.contains("forwarded: for=\"[::1]\";host=front.test;proto=http"))
        XCTAssertTrue(lines.contains("X-Set: yes"))
        XCTAssertTrue(lines.contains("content-length: 4"))
        for gone in ["x-private", "keep-alive", "te:", "transfer-encoding", "content-length: 99", "proxy-", "upgrade", "expect", "accept"] {
            XCTAssertFalse(head.lowercased().contains(gone), gone)
        }
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"))
    }

    func testTheRequestHeadIsWrittenWholeInItsOrder() throws {
        let headers: HTTPHeaders = [
            "Host": "front.test", "X-Forwarded-For": "10.0.0.9", "Accept": "*/*", "Forwarded": "for=10.0.0.9",
            "x-forwarded-for": "10.0.0.8", "Via": "1.0 edge", "TE": "trailers", "Connection": "TE, X-Gone", "X-Gone": "1",
        ]
        var target = ProxyTarget(url: OutboundURL("http://10.0.0.5:8080")!, target: "/v1")
        target.setHeaders = [("X-Set", "yes")]
        target.via = true
        target.preserveHost = true
        let head = String(buffer: ProxyHeaders.requestHead(request("PUT", headers: headers), target, authority: "b:1", framing: .chunked))
        XCTAssertEqual(
            head,
            "PUT /v1 HTTP/1.1\r\nhost: front.test\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.9, 10.0.0.8, ::1\r\n"
                + "x-forwarded-proto: http\r\nx-forwarded-host: front.test\r\n"
                + "forwarded: for=10.0.0.9, for=\"[::1]\";host=front.test;proto=http\r\nvia: 1.0 edge, 1.1 moonwire\r\n"
                + "X-Set: yes\r\nte: trailers\r\nconnection: te\r\ntransfer-encoding: chunked\r\n\r\n")
        target.preserveHost = false
        let long = String(repeating: "\"", count: 3000)
        let big = String(
            buffer: ProxyHeaders.requestHead(request(headers: ["Host": long, "Via": long]), target, authority: "b:1", framing: .length(12)))
        XCTAssertTrue(big.hasPrefix("GET /v1 HTTP/1.1\r\nhost: b:1\r\n"), "a head far larger than its measure's constants")
        XCTAssertTrue(big.hasSuffix("content-length: 12\r\n\r\n"))
    }

    func testAnswerFieldsLoseHopByHopFieldsAndAReplacedLength() throws {
        var reader = HTTP1ResponseReader(maxBodySize: 0, isHead: false, streams: true)
        var buffer = ByteBuffer(
            string: "HTTP/1.1 200 OK\r\nConnection: x-conn\r\nX-Conn: 1\r\nKeep-Alive: a\r\nTransfer-Encoding: chunked\r\n"
                + "Content-Length: 5\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nVia: 1.0 other\r\n\r\n")
        guard case .headArrived(let head) = try reader.read(&buffer) else { return XCTFail("no head") }
        let headers = ProxyHeaders.responseHeaders(head, via: true)
        XCTAssertEqual(headers[canonicalForm: "set-cookie"], ["a", "b"])
        XCTAssertEqual(headers.first(name: "via"), "1.0 other, 1.1 moonwire")
        for gone in ["connection", "x-conn", "keep-alive", "transfer-encoding", "content-length"] {
            XCTAssertFalse(headers.contains(name: gone), gone)
        }
    }

    func testForwardedQuotesWhatIsNotAToken() {
        var out = ByteBuffer()
        ProxyHeaders.writeForwardedElement(&out, ip: "1.2.3.4", host: "a.test:80", proto: "https")
        XCTAssertEqual(String(buffer: out), "for=1.2.3.4;host=\"a.test:80\";proto=https")
        out.clear()
        ProxyHeaders.writeForwardedElement(&out, ip: "::1", host: "say\"hi\"", proto: "http")
        XCTAssertEqual(String(buffer: out), "for=\"[::1]\";host=\"say\\\"hi\\\"\";proto=http")
        for (host, written) in [("a.test", "a.test"), ("", "\"\""), ("a\\b:1", "\"a\\\\b:1\""), ("a b", "\"a b\"")] {
            out.clear()
            ProxyHeaders.writeForwardedElement(&out, ip: "1.2.3.4", host: host, proto: "ws")
            XCTAssertEqual(String(buffer: out), "for=1.2.3.4;host=\(written);proto=ws", host)
        }
    }

    func testTheSchemeGoesOnInBothForwardedFields() {
        let target = ProxyTarget(url: OutboundURL("http://10.0.0.5:8080")!, target: "/")
        for scheme in ["http", "https"] {
            let request = HTTPRequest(
                method: "GET", uri: "/", version: "1.1", scheme: scheme, headers: ["Host": "a.test"], body: ByteBuffer(),
                connection: ConnectionInfo(remoteIP: "1.2.3.4", remotePort: 5, localPort: 80))!
            let head = String(buffer: ProxyHeaders.requestHead(request, target, framing: .none))
            XCTAssertTrue(head.contains("\r\nx-forwarded-proto: \(scheme)\r\n"), head)
            XCTAssertTrue(head.contains("\r\nforwarded: for=1.2.3.4;host=a.test;proto=\(scheme)\r\n"), head)
        }
    }

    func testARoutesForwardingFieldsAreTheClientsOwnWhenCopied() {
        let target = ProxyTarget(url: OutboundURL("http://10.0.0.5:8080")!, target: "/")
        let forwarding = ProxyForwardingFields()
        let clients: [(ip: String, scheme: String, headers: HTTPHeaders)] = [
            ("1.2.3.4", "http", ["Host": "a.test"]), ("1.2.3.4", "http", ["Host": "a.test", "Accept": "*/*"]),
            ("1.2.3.4", "http", ["Host": "b.test:81"]), ("::1", "http", ["Host": "b.test:81"]), ("::1", "https", ["Host": "b.test:81"]),
            ("::1", "https", [:]), ("::1", "https", ["Host": "c.test", "X-Forwarded-For": "9.9.9.9", "Forwarded": "for=9.9.9.9"]),
            ("::1", "https", ["Host": "c.test", "Connection": "x-forwarded-host"]), ("::1", "https", ["Host": "c.test"]),
        ]
        for client in clients {
            let request = HTTPRequest(
                method: "GET", uri: "/", version: "1.1", scheme: client.scheme, headers: client.headers, body: ByteBuffer(),
                connection: ConnectionInfo(remoteIP: client.ip, remotePort: 5, localPort: 80))!
            XCTAssertEqual(
                String(buffer: ProxyHeaders.requestHead(request, target, framing: .none, forwarding: forwarding)),
                String(buffer: ProxyHeaders.requestHead(request, target, framing: .none)), "\(client)")
        }
    }

    func testAFieldTheClientsConnectionNamesStaysBehindOnARouteThatDropsNothing() {
        let target = ProxyTarget(url: OutboundURL("http://10.0.0.5:8080")!, target: "/")
        let head = String(
            buffer: ProxyHeaders.requestHead(
                request(headers: ["Connection": "x-private, x-forwarded-host", "X-Private": "1", "Host": "a.test"]), target,
                framing: .none))
        XCTAssertFalse(head.lowercased().contains("x-private"), head)
        XCTAssertFalse(head.contains("x-forwarded-host"), head)
        XCTAssertTrue(head.contains("\r\nforwarded: for=\"[::1]\";host=a.test;proto=http\r\n"), head)
    }

    func testAGroupTakesTurnsAndLeavesAFailedServerOut() {
        let servers = ["http://a:1", "http://b:1", "http://c:1"].map { OutboundURL($0)! }
        let group = UpstreamGroup(servers: servers, failTimeout: .seconds(10))
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        XCTAssertEqual((0..<6).map { _ in group.pick(now: now)! }, [0, 1, 2, 0, 1, 2])
        group.failed(1, now: now)
        XCTAssertEqual((0..<4).map { _ in group.pick(now: now)! }, [0, 2, 0, 2])
        XCTAssertEqual(group.pick(now: now, excluding: [0, 2]), 1, "the one left out is tried when nothing else is")
        XCTAssertTrue(group.isDown(1, now: now))
        XCTAssertFalse(group.isDown(1, now: now + .seconds(11)))
        XCTAssertNil(group.pick(now: now, excluding: [0, 1, 2]))
    }

    func testTETrailersGoesOnAndTrailerFieldsLoseWhatMustComeFirst() throws {
        let target = ProxyTarget(url: OutboundURL("http://10.0.0.5:8080")!, target: "/")
        let head = String(buffer: ProxyHeaders.requestHead(request(headers: ["TE": "gzip, trailers"]), target, framing: .none))
        XCTAssertTrue(head.contains("\r\nte: trailers\r\nconnection: te\r\n"), head)
        let trailers: HTTPHeaders = [
            "X-Checksum": "abc", "Content-Length": "5", "Set-Cookie": "a=1", "Connection": "close", "Trailer": "x",
            "Transfer-Encoding": "chunked", "Cache-Control": "no-store", "Grpc-Status": "0",
        ]
        XCTAssertEqual(ProxyHeaders.trailerFields(trailers)?.map { $0.name }, ["X-Checksum", "Grpc-Status"])
        XCTAssertNil(ProxyHeaders.trailerFields(["Content-Type": "text/plain"]))
        XCTAssertNil(ProxyHeaders.trailerFields([:]))
    }
}
