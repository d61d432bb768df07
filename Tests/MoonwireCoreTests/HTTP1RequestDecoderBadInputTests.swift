// HTTP1RequestDecoder and malformed input: each case must fire exactly one error (an
// HTTPParserError, or an HTTP1RequestError for a too long request line and the Host rules), after
// the parts that came before it, and then ignore whatever follows. Also the edge cases the
// decoder accepts on purpose, and reproductions of the bugs found while writing these tests.
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import MoonwireCore

final class HTTP1RequestDecoderBadInputTests: XCTestCase {
    private struct BadInput {
        var input: String
        var error: any Error
        /// The events before the error.
        var before: [String]
        var maxHeadSize: Int

        init(input: String, error: HTTPParserError, before: [String] = [], maxHeadSize: Int = 1024) {
            (self.input, self.error, self.before, self.maxHeadSize) = (input, error, before, maxHeadSize)
        }

        init(input: String, error: HTTP1RequestError, before: [String] = [], maxHeadSize: Int = 1024) {
            (self.input, self.error, self.before, self.maxHeadSize) = (input, error, before, maxHeadSize)
        }
    }

    private static let chunkedHead = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    private static let chunkedEvent = "POST /c HTTP/1.1 | Host: x | Transfer-Encoding: chunked"

    private static func post(_ fields: String) -> String {
        "POST / HTTP/1.1\r\nHost: x\r\n\(fields)\r\n\r\n"
    }

    private static func chunked(_ body: String, before: [String] = [], maxHeadSize: Int = 1024) -> BadInput {
        BadInput(input: chunkedHead + body, error: .invalidChunkSize, before: [chunkedEvent] + before, maxHeadSize: maxHeadSize)
    }

    private static let cases: [String: BadInput] = [
        // Framing (RFC 9112 section 6).
        "TE and CL": BadInput(input: post("Transfer-Encoding: chunked\r\nContent-Length: 3"), error: .unexpectedContentLength),
        "CL and TE": BadInput(input: post("Content-Length: 3\r\nTransfer-Encoding: chunked"), error: .unexpectedContentLength),
        "two lengths": BadInput(input: post("Content-Length: 3\r\nContent-Length: 4"), error: .invalidContentLength),
        "CL abc": BadInput(input: post("Content-Length: abc"), error: .invalidContentLength),
        "CL -1": BadInput(input: post("Content-Length: -1"), error: .invalidContentLength),
        "CL +1": BadInput(input: post("Content-Length: +1"), error: .invalidContentLength),
        "CL list": BadInput(input: post("Content-Length: 1,1"), error: .invalidContentLength),
        "CL empty": BadInput(input: post("Content-Length:"), error: .invalidContentLength),
        "CL 19 digits": BadInput(input: post("Content-Length: 1000000000000000000"), error: .invalidContentLength),
        "TE gzip": BadInput(input: post("Transfer-Encoding: gzip"), error: .invalidHeaderToken),
        "TE chunked twice": BadInput(input: post("Transfer-Encoding: chunked, chunked"), error: .invalidHeaderToken),
        "TE gzip, chunked": BadInput(input: post("Transfer-Encoding: gzip, chunked"), error: .invalidHeaderToken),
        "TE chunked, gzip": BadInput(input: post("Transfer-Encoding: chunked, gzip"), error: .invalidHeaderToken),
        "TE fields twice": BadInput(input: post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"), error: .invalidHeaderToken),
        "TE on 1.0": BadInput(input: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", error: .invalidHeaderToken),
        // Fields (RFC 9112 section 5).
        "space before colon": BadInput(input: post("Host : x"), error: .invalidHeaderToken),
        "obs-fold": BadInput(input: post("X-A: a\r\n folded"), error: .invalidHeaderToken),
        "no colon": BadInput(input: post("Host"), error: .invalidHeaderToken),
        "no name": BadInput(input: post(": v"), error: .invalidHeaderToken),
        "NUL in value": BadInput(input: post("X-A: a\u{0}b"), error: .invalidCharactersUsed),
        "bare CR in value": BadInput(input: post("X-A: a\rb"), error: .invalidCharactersUsed),
        "CR CR LF": BadInput(input: post("X-A: a\r"), error: .invalidCharactersUsed),
        "DEL in value": BadInput(input: post("X-A: a\u{7F}"), error: .invalidCharactersUsed),
        // Request line (RFC 9112 section 3).
        "control char in target": BadInput(input: "GET /a\u{1}b HTTP/1.1\r\nHost: x\r\n\r\n", error: .invalidURL),
        "tab in target": BadInput(input: "GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", error: .invalidURL),
        "missing target": BadInput(input: "GET HTTP/1.1\r\nHost: x\r\n\r\n", error: .invalidURL),
        "empty target": BadInput(input: "GET  HTTP/1.1\r\nHost: x\r\n\r\n", error: .invalidURL),
        "HTTP/2.0": BadInput(input: "GET / HTTP/2.0\r\n\r\n", error: .invalidVersion),
        "HTTP/1.1x": BadInput(input: "GET / HTTP/1.1x\r\n\r\n", error: .invalidVersion),
        "lowercase http": BadInput(input: "GET / http/1.1\r\n\r\n", error: .invalidVersion),
        "space after version": BadInput(input: "GET / HTTP/1.1 \r\n\r\n", error: .invalidVersion),
        "no version": BadInput(input: "GET /\r\n\r\n", error: .invalidURL),
        "bad method": BadInput(input: "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", error: .invalidMethod),
        "leading space": BadInput(input: " GET / HTTP/1.1\r\nHost: x\r\n\r\n", error: .invalidMethod),
        "long method": BadInput(input: String(repeating: "M", count: 65) + " / HTTP/1.1\r\nHost: x\r\n\r\n", error: .invalidMethod),
        // Refused before the head is complete (HTTP1HeadParser.checkStart).
        "TLS hello": BadInput(input: "\u{16}\u{3}\u{1}\u{2}\u{0}", error: .invalidMethod),
        "bad version, head unfinished": BadInput(input: "GET / HTTP/2.0\r\nHost: x\r\n", error: .invalidVersion),
        // Chunks (RFC 9112 section 7.1).
        "chunk size zz": chunked("zz\r\n"),
        "chunk size 3x": chunked("3x\r\nabc\r\n"),
        "chunk size empty": chunked("\r\n"),
        "chunk size 16 digits": chunked("0000000000000003\r\nabc\r\n0\r\n\r\n"),
        "no CRLF after data": chunked("3\r\nabcX\r\n0\r\n\r\n", before: ["body abc"]),
        "last chunk for CRLF": chunked("3\r\nabc0\r\n\r\n", before: ["body abc"]),
        "control char in ext": chunked("3;a\u{1}\r\nabc\r\n"),
        "chunk line over 4096": chunked("3;" + String(repeating: "e", count: 5000) + "\r\nabc\r\n"),
        "chunk line over 4096, unfinished": chunked("3;" + String(repeating: "e", count: 5000)),
        // Trailers (RFC 9112 section 7.1.2), limited like a head.
        "folded trailer": BadInput(input: chunkedHead + "0\r\nT: a\r\n b\r\n\r\n", error: .invalidHeaderToken, before: [chunkedEvent]),
        "trailer line over limit": BadInput(
            input: chunkedHead + "0\r\nT: " + String(repeating: "t", count: 300) + "\r\n\r\n", error: .headerOverflow,
            before: [chunkedEvent], maxHeadSize: 256),
        "trailers over limit": BadInput(
            input: chunkedHead + "0\r\n" + String(repeating: "T: " + String(repeating: "t", count: 60) + "\r\n", count: 5) + "\r\n",
            error: .headerOverflow, before: [chunkedEvent], maxHeadSize: 256),
        "trailer unfinished over limit": BadInput(
            input: chunkedHead + "0\r\nT: " + String(repeating: "t", count: 300), error: .headerOverflow, before: [chunkedEvent],
            maxHeadSize: 256),
        // The head and its trailers share one budget: 57 + 5 * 44 bytes is over 256.
        "head and trailers over limit": BadInput(
            input: chunkedHead + "0\r\n" + String(repeating: "T: " + String(repeating: "t", count: 39) + "\r\n", count: 5) + "\r\n",
            error: .headerOverflow, before: [chunkedEvent], maxHeadSize: 256),
        "too many trailer fields": BadInput(
            input: chunkedHead + "0\r\n" + String(repeating: "T: v\r\n", count: HTTP1RequestDecoder.maxTrailerFields + 1) + "\r\n",
            error: .headerOverflow, before: [chunkedEvent], maxHeadSize: 4096),
        // Head size.
        "complete head over limit": BadInput(input: post("X-A: " + String(repeating: "a", count: 100)), error: .headerOverflow, maxHeadSize: 64),
        "unfinished head over limit": BadInput(input: "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + String(repeating: "a", count: 2000), error: .headerOverflow),
        // A request line over the head's budget is 414, not 431 (RFC 9112 section 3).
        "request line over limit": BadInput(
            input: "GET /" + String(repeating: "a", count: 1100) + " HTTP/1.1\r\nHost: x\r\n\r\n", error: .targetTooLong(limit: 1024)),
        "request line over limit, unfinished": BadInput(
            input: "GET /" + String(repeating: "a", count: 1100), error: .targetTooLong(limit: 1024)),
        // A request line of 1024 bytes, CR LF included, fits; the field after it does not.
        "request line of the whole budget": BadInput(
            input: "GET /" + String(repeating: "a", count: 1008) + " HTTP/1.1\r\nHost: x\r\n\r\n", error: .headerOverflow),
        "request line one byte over": BadInput(
            input: "GET /" + String(repeating: "a", count: 1009) + " HTTP/1.1\r\nHost: x\r\n\r\n", error: .targetTooLong(limit: 1024)),
        // Host (RFC 9112 section 3.2).
        "no Host on HTTP/1.1": BadInput(input: "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", error: .missingHost),
        "two Host fields": BadInput(input: post("host: x"), error: .duplicateHost),
        "two Host fields on HTTP/1.0": BadInput(input: "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", error: .duplicateHost),
        "Host with a slash": BadInput(input: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", error: .invalidHost("a/b")),
        "Host with user information": BadInput(input: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", error: .invalidHost("u@a")),
        "Host with a space": BadInput(input: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", error: .invalidHost("a b")),
        "Host port not digits": BadInput(input: "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", error: .invalidHost("a:8o")),
        "Host with two ports": BadInput(input: "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", error: .invalidHost("a:1:2")),
        "Host IPv6 unclosed": BadInput(input: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", error: .invalidHost("[::1")),
        "Host bad escape": BadInput(input: "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", error: .invalidHost("a%zz")),
        "Host invalid on HTTP/1.0": BadInput(input: "GET / HTTP/1.0\r\nHost: a\\b\r\n\r\n", error: .invalidHost("a\\b")),
    ]

    /// Each case whole, then byte by byte (which also shows the error fires once and the bytes
    /// after it are dropped).
    func testEachCaseFiresOneErrorAndIgnoresTheRest() throws {
        for (name, bad) in Self.cases.sorted(by: { $0.key < $1.key }) {
            for pieces in [[Array(bad.input.utf8)], Array(bad.input.utf8).map { [$0] }] {
                let decoder = try DecoderHarness(maxHeadSize: bad.maxHeadSize)
                defer { decoder.finish() }
                for piece in pieces { try decoder.feed(piece) }
                try decoder.feed("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
                let label = "\(name) in \(pieces.count) piece(s)"
                XCTAssertEqual(decoder.events, bad.before + [RequestPartRecorder.line(bad.error)], label)
                XCTAssertEqual(decoder.recorder.errors.count, 1, label)
                XCTAssertEqual(decoder.recorder.errors.first.map { String(reflecting: $0) }, String(reflecting: bad.error), label)
                // Nothing is kept after an error, so the end of input is quiet.
                try decoder.channel.close().wait()
                XCTAssertEqual(decoder.recorder.errors.count, 1, label)
            }
        }
    }

    func testUnfinishedHeadOverLimitIsRefusedWhileItTrickles() throws {
        let decoder = try DecoderHarness(maxHeadSize: 1024)
        defer { decoder.finish() }
        let head = Array(("GET / HTTP/1.1\r\nHost: x\r\nX-A: " + String(repeating: "a", count: 1500)).utf8)
        try decoder.trickle(Array(head.prefix(1000)), size: 100)
        XCTAssertEqual(decoder.events, [])
        try decoder.trickle(Array(head.dropFirst(1000)), size: 100)
        XCTAssertEqual(decoder.events, [RequestPartRecorder.line(HTTPParserError.headerOverflow)])
    }

    func testHeadOfExactlyTheLimit() throws {
        func head(size: Int) -> String {
            let start = "GET / HTTP/1.1\r\nHost: x\r\nX-A: "
            return start + String(repeating: "a", count: size - start.utf8.count - 4) + "\r\n\r\n"
        }
        let fits = try DecoderHarness(maxHeadSize: 200)
        defer { fits.finish() }
        try fits.trickle(Array(head(size: 200).utf8), size: 7)
        XCTAssertEqual(fits.events.last, "end")

        let over = try DecoderHarness(maxHeadSize: 200)
        defer { over.finish() }
        try over.feed(head(size: 201))
        XCTAssertEqual(over.events, [RequestPartRecorder.line(HTTPParserError.headerOverflow)])
    }

    // MARK: - Accepted on purpose

    func testAcceptedEdgeCases() throws {
        let decoder = try DecoderHarness()
        defer { decoder.finish() }
        try decoder.feed(
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab"
                + "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n\r\n00000000000000a\r\n0123456789\r\n0\r\n\r\n"
                + "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999999\r\nX-Obs: caf\u{E9}\r\n\r\n")
        XCTAssertEqual(
            decoder.events,
            [
                "POST /a HTTP/1.1 | Host: x | Content-Length: 2 | Content-Length: 2", "body ab", "end",
                "POST /b HTTP/1.1 | Host: x | Transfer-Encoding: Chunked", "body 0123456789", "end",
                "POST /c HTTP/1.1 | Host: x | Content-Length: 999999999999999999 | X-Obs: caf\u{E9}",
            ])
        XCTAssertTrue(decoder.recorder.errors.isEmpty)
    }

    /// Host values RFC 9110 allows (an empty one is what a target without authority gets), no
    /// Host on HTTP/1.0, and an HTTP/1.x above 1.1 taken as 1.1 (RFC 9110 section 2.5).
    func testAcceptedHostsAndVersions() throws {
        let decoder = try DecoderHarness()
        defer { decoder.finish() }
        let hosts = ["", "example.com:", "[::1]:8080", "127.0.0.1:8080", "xn--bcher-kva.example", "a%20b", "[v1.x]"]
        try decoder.feed(
            hosts.map { "GET / HTTP/1.1\r\nHost: \($0)\r\n\r\n" }.joined()
                + "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /new HTTP/1.2\r\nHost: x\r\n\r\n")
        XCTAssertEqual(
            decoder.events,
            hosts.flatMap { ["GET / HTTP/1.1 | Host: \($0)", "end"] }
                + ["GET /old HTTP/1.0 | Connection: keep-alive", "end", "GET /new HTTP/1.1 | Host: x", "end"])
        XCTAssertTrue(decoder.recorder.errors.isEmpty)
    }

    // MARK: - Regressions found while the decoder was written

    // A Transfer-Encoding field that lists no coding ("" or ",") is still a Transfer-Encoding
    // field: with Content-Length beside it the framing is ambiguous (RFC 9112 section 6.3), and
    // a proxy that reads it otherwise would desynchronise from us (request smuggling).
    func testEmptyTransferEncodingIsRefused() throws {
        for value in ["", ",", " , "] {
            let decoder = try DecoderHarness()
            defer { decoder.finish() }
            try decoder.feed(Self.post("Transfer-Encoding: \(value)\r\nContent-Length: 3") + "abc")
            XCTAssertEqual(decoder.recorder.errors.count, 1, "Transfer-Encoding: \(value)")
            XCTAssertFalse(decoder.events.contains("body abc"), "Transfer-Encoding: \(value)")
        }
    }

    // A handler that closes the connection on a head stops the decoder: the pipelined request
    // behind it is not decoded on the closed channel.
    func testNothingIsDecodedAfterTheChannelClosesOnAHead() throws {
        let decoder = try DecoderHarness()
        defer { decoder.finish() }
        decoder.recorder.onPart = { part, context in
            if case .head = part, context.channel.isActive { context.close(promise: nil) }
        }
        try decoder.feed("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(decoder.events.first, "GET /a HTTP/1.1 | Host: x")
        XCTAssertFalse(decoder.events.contains("GET /b HTTP/1.1 | Host: x"), "\(decoder.events)")
    }

    // A declined upgrade request that also says "Connection: close" ends the connection's
    // requests, as any "Connection: close" does.
    func testDeclinedUpgradeThatClosesDecodesNothingMore() throws {
        let decoder = try DecoderHarness()
        defer { decoder.finish() }
        try decoder.feed("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade, close\r\nUpgrade: websocket\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(decoder.decoder.isPaused)
        decoder.decoder.upgradeDeclined()
        decoder.channel.embeddedEventLoop.run()
        XCTAssertEqual(decoder.events, ["GET / HTTP/1.1 | Host: x | Connection: upgrade, close | Upgrade: websocket", "end"])
    }

    // Upgrade requests that NIO's upgrade handler does not hold back must not pause the
    // decoder for good: (a) a later request asking for an upgrade (the upgrade handler has
    // left), (b) a first request naming a protocol no upgrader has (declined on the head).
    func testUpgradeRequestsTheUpgradeHandlerDoesNotHoldBack() throws {
        let later =
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            + "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
        let unknown = "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        for (input, paths) in [(later, ["/a", "/b", "/c"]), (unknown, ["/a", "/b"])] {
            let delegate = PathRecordingDelegate()
            let connection = try HTTP1TestConnection(delegate: delegate)
            defer { try? connection.close() }
            try connection.channel.writeInbound(ByteBuffer(string: input))
            connection.channel.embeddedEventLoop.run()
            XCTAssertEqual(delegate.paths, paths)
            XCTAssertFalse(try connection.channel.pipeline.syncOperations.handler(type: HTTP1RequestDecoder.self).isPaused)
        }
    }
}

/// Answers every request with 200 and notes its path.
private final class PathRecordingDelegate: ServerDelegate {
    var paths: [String] = []

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        paths.append(request.path)
        responder.respond(.plain(200, "ok"))
    }
}
