// The head of an HTTP/1.x request (RFC 9112 sections 2 to 6): request line, header fields and
// what they say about the body. Parsed in one pass over bytes that hold the whole head, so a
// head that arrived in one read is parsed straight from the read buffer; header names and
// values become strings once, and the framing fields and Host are read while the fields go by.
import Glibc
import NIOCore
import NIOHTTP1

/// How the body of a request is delimited, and what follows the request on its connection.
struct HTTP1Framing {
    enum Body {
        case none
        case length(Int)
        case chunked
    }

    var body: Body
    /// The head has a Content-Length or Transfer-Encoding field (`body` may still be none:
    /// `Content-Length: 0`). A head without either frames no body, which spares asking the
    /// delegate whether to stream one (`ServerDelegate.streamsBodylessRequests`).
    var declaresBody: Bool
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    var keepAlive: Bool
    /// `Upgrade` with `Connection: upgrade`: the bytes after this request may be another
    /// protocol's, so parsing stops until the upgrade is known to have been declined.
    var upgrade: Bool
}

enum HTTP1HeadParser {
    /// A parsed head, its framing, and how many bytes it took (the empty line included).
    struct Result {
        var head: HTTPRequestHead
        var framing: HTTP1Framing
        var length: Int
    }

    /// Where the empty line that ends a head finishes in `bytes`, searching from `from` (a
    /// position already searched, so a head that trickles in is not searched again from its
    /// start); nil when the head is not complete yet. Lines end in LF, optionally after CR.
    static func headEnd(in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var index = max(from, 0)
        let count = bytes.count
        while index < count {
            guard let lf = firstLF(bytes, from: index) else { return nil }
            // The line after this LF is empty when it is LF or CR LF at once.
            if lf + 1 < count, bytes[lf + 1] == lf8 { return lf + 2 }
            if lf + 2 < count, bytes[lf + 1] == cr8, bytes[lf + 2] == lf8 { return lf + 3 }
            if lf + 2 >= count { return nil }
            index = lf + 1
        }
        return nil
    }

    /// How many empty lines (CR LF or LF) start `bytes`: a client may send them between
    /// requests, and RFC 9112 section 2.2 says to ignore them.
    static func leadingEmptyLines(in bytes: UnsafeRawBufferPointer) -> Int {
        var index = 0
        while index < bytes.count {
            if bytes[index] == lf8 {
                index += 1
            } else if bytes[index] == cr8, index + 1 < bytes.count, bytes[index + 1] == lf8 {
                index += 2
            } else {
                break
            }
        }
        return index
    }

    /// Parses the head in `bytes[..<end]`, where `end` came from `headEnd`; `strings` parses the
    /// field lines, and gives what it made of the connection's previous head for the same lines.
    static func parse(_ bytes: UnsafeRawBufferPointer, end: Int, strings: inout HeadFieldStrings) throws -> Result {
        var lines = LineReader(bytes: bytes, end: end)
        guard let requestLine = lines.next() else { throw HTTPParserError.invalidInternalState }
        let (method, uri, version) = try parseRequestLine(bytes, requestLine)
        var fields = FramingFields()
        strings.startHead()
        while let line = lines.next(), line.lowerBound < line.upperBound {
            let (name, value) = try strings.field(bytes, line: line)
            fields.note(name: name, value: value, in: bytes)
        }
        let framing = try fields.framing(version: version, in: bytes)
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: strings.endHead())
        return Result(head: head, framing: framing, length: end)
    }

    /// Calls `body` with each non-empty element of a comma-separated list, trimmed.
    static func forEachToken(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            var end = start
            while end < range.upperBound, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var tokenStart = start
            var tokenEnd = end
            while tokenStart < tokenEnd, bytes[tokenStart] == space8 || bytes[tokenStart] == tab8 { tokenStart += 1 }
            while tokenEnd > tokenStart, bytes[tokenEnd - 1] == space8 || bytes[tokenEnd - 1] == tab8 { tokenEnd -= 1 }
            if tokenStart < tokenEnd { body(tokenStart..<tokenEnd) }
            start = end + 1
        }
    }

    /// Checks the start of a head that is not complete yet, so that input which cannot be a
    /// request is refused at once rather than when its head would end: the method's bytes, and
    /// the request line once it is complete (once: a line ending before `checked`, the bytes a
    /// previous call saw, was checked then).
    static func checkStart(_ bytes: UnsafeRawBufferPointer, checked: Int) throws {
        // The CR of an empty line whose LF has not arrived yet.
        if bytes.count == 1, bytes[0] == cr8 { return }
        guard let lf = firstLF(bytes, from: 0) else {
            for (index, byte) in bytes.enumerated() {
                if byte == space8 { return }
                guard HTTPToken.isTokenByte(byte), index < maxMethodLength else { throw HTTPParserError.invalidMethod }
            }
            return
        }
        guard lf >= checked else { return }
        let lineEnd = lf > 0 && bytes[lf - 1] == cr8 ? lf - 1 : lf
        _ = try parseRequestLine(bytes, 0..<lineEnd)
    }

    /// Longer method tokens are refused; the registered ones have at most 17 bytes.
    static let maxMethodLength = 64

    /// Parses one `name: value` line (a header or trailer field) into the ranges of its name
    /// and of its value without surrounding whitespace.
    static func parseField(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) throws -> (Range<Int>, Range<Int>) {
        let colon = tokenEnd(bytes, line)
        // No name, whitespace before the colon (RFC 9112 section 5.1), a folded line (section
        // 5.2) or a byte that is not a token's: all are answered 400.
        guard colon > line.lowerBound, colon < line.upperBound, bytes[colon] == colon8 else {
            throw HTTPParserError.invalidHeaderToken
        }
        var start = colon + 1
        var end = line.upperBound
        while start < end, isWhitespace(bytes[start]) { start += 1 }
        while end > start, isWhitespace(bytes[end - 1]) { end -= 1 }
        guard isFieldValue(bytes, start..<end) else { throw HTTPParserError.invalidCharactersUsed }
        return (line.lowerBound..<colon, start..<end)
    }

    /// Where the token that starts `range` ends (a method, a field name): byte by byte, each
    /// looked up in `HTTPToken.table`, about seven instructions a byte. Testing eight bytes at once
    /// in a word (letters, digits and "-") cost more for the names heads have, of 4 to 15 bytes:
    /// about 45 instructions per word, and the byte that ended it tested again on its own.
    private static func tokenEnd(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int {
        HTTPToken.table.withUnsafeBufferPointer { table in
            var index = range.lowerBound
            while index < range.upperBound, table[Int(bytes[index])] != 0 { index += 1 }
            return index
        }
    }

    /// Whether every byte of `range` may be in a field value. Values are most of a head's
    /// bytes, so eight are tested at once while none of them is a control byte; a word that
    /// has one (an HTAB, or a byte that makes the head invalid) is decided byte by byte. The
    /// last word overlaps the one before instead of leaving up to seven bytes to test one by one.
    private static func isFieldValue(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        var index = range.lowerBound
        if range.count >= 8 {
            while true {
                let word = min(index, range.upperBound - 8)
                if ASCIIWord.hasControlByte(bytes.loadUnaligned(fromByteOffset: word, as: UInt64.self)) {
                    index = word
                    break
                }
                index = word + 8
                if index == range.upperBound { return true }
            }
        }
        while index < range.upperBound {
            guard isFieldValueByte(bytes[index]) else { return false }
            index += 1
        }
        return true
    }

    private static func parseRequestLine(
        _ bytes: UnsafeRawBufferPointer, _ line: Range<Int>
    ) throws -> (HTTPMethod, String, HTTPVersion) {
        var index = tokenEnd(bytes, line)
        guard index > line.lowerBound, index < line.upperBound, bytes[index] == space8,
            index - line.lowerBound <= maxMethodLength
        else { throw HTTPParserError.invalidMethod }
        let method = self.method(bytes, line.lowerBound..<index)
        let targetStart = index + 1
        index = targetStart
        while index < line.upperBound, isTargetByte(bytes[index]) { index += 1 }
        guard index > targetStart, index < line.upperBound, bytes[index] == space8 else {
            throw HTTPParserError.invalidURL
        }
        let uri = string(bytes, targetStart..<index)
        let version = try parseVersion(bytes, index + 1..<line.upperBound)
        return (method, uri, version)
    }

    /// `HTTP/1.x`; another major version is not HTTP/1 framing and gets 400. A minor version
    /// above 1 is taken as 1.1, the highest this server speaks, which its answer then names
    /// (RFC 9110 section 2.5).
    private static func parseVersion(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws -> HTTPVersion {
        guard range.count == 8, bytesEqual(bytes, range.lowerBound..<range.lowerBound + 5, "HTTP/"),
            isDigit(bytes[range.lowerBound + 5]), bytes[range.lowerBound + 6] == UInt8(ascii: "."),
            isDigit(bytes[range.lowerBound + 7])
        else { throw HTTPParserError.invalidVersion }
        guard bytes[range.lowerBound + 5] == UInt8(ascii: "1") else { throw HTTPParserError.invalidVersion }
        return bytes[range.lowerBound + 7] == UInt8(ascii: "0") ? .http1_0 : .http1_1
    }

    /// The common methods without building a string first.
    private static func method(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTPMethod {
        let first = bytes[range.lowerBound]
        switch (range.count, first) {
        case (3, UInt8(ascii: "G")) where bytesEqual(bytes, range, "GET"): return .GET
        case (4, UInt8(ascii: "P")) where bytesEqual(bytes, range, "POST"): return .POST
        case (4, UInt8(ascii: "H")) where bytesEqual(bytes, range, "HEAD"): return .HEAD
        case (3, UInt8(ascii: "P")) where bytesEqual(bytes, range, "PUT"): return .PUT
        default: return HTTPMethod(rawValue: string(bytes, range))
        }
    }

    static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    static func firstLF(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < bytes.count, let base = bytes.baseAddress,
            let found = memchr(base + from, Int32(lf8), bytes.count - from)
        else { return nil }
        return UnsafeRawPointer(found) - base
    }

    /// A request target's bytes: visible ASCII, and bytes above it that some clients send raw.
    private static func isTargetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte != 0x7F
    }

    /// field-vchar, SP and HTAB (RFC 9110 section 5.5); obs-text is kept as received.
    private static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 ? byte != 0x7F : byte == tab8
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == space8 || byte == tab8 }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

let lf8 = UInt8(ascii: "\n")
let cr8 = UInt8(ascii: "\r")
private let space8 = UInt8(ascii: " ")
private let tab8 = UInt8(ascii: "\t")
private let colon8 = UInt8(ascii: ":")

/// The lines of a head, without their CR LF (or LF).
private struct LineReader {
    let bytes: UnsafeRawBufferPointer
    let end: Int
    var position = 0

    init(bytes: UnsafeRawBufferPointer, end: Int) {
        self.bytes = bytes
        self.end = end
    }

    mutating func next() -> Range<Int>? {
        guard position < end, let lf = HTTP1HeadParser.firstLF(bytes, from: position), lf < end else { return nil }
        let start = position
        position = lf + 1
        let lineEnd = lf > start && bytes[lf - 1] == cr8 ? lf - 1 : lf
        return start..<lineEnd
    }
}

/// The options of Connection fields (RFC 9112 section 9.3): whether the connection persists.
struct ConnectionOptions {
    var close = false
    var keepAliveToken = false
    var upgrade = false

    /// Notes the options of one Connection field value, a comma-separated list.
    mutating func note(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) {
        HTTP1HeadParser.forEachToken(bytes, value) { token in
            if bytesEqual(bytes, token, "close", ignoringCase: true) { close = true }
            if bytesEqual(bytes, token, "keep-alive", ignoringCase: true) { keepAliveToken = true }
            if bytesEqual(bytes, token, "upgrade", ignoringCase: true) { upgrade = true }
        }
    }

    /// HTTP/1.1 persists unless told to close; HTTP/1.0 only when asked to keep alive.
    func keepAlive(http1_0: Bool) -> Bool {
        http1_0 ? keepAliveToken && !close : !close
    }
}

/// The fields that decide framing (RFC 9112 section 6), and the Host fields (section 3.2),
/// noted as the head is parsed.
private struct FramingFields {
    var contentLength: Int?
    var conflictingLengths = false
    /// Transfer-Encoding fields, and the codings they list.
    var transferEncodingFields = 0
    var transferEncodings = 0
    var chunked = false
    var connection = ConnectionOptions()
    var upgrade = false
    var hostFields = 0
    /// Where the first Host value that is not a host (`HostSyntax`) is; a range, not a string,
    /// so that noting a valid Host costs no allocation.
    var invalidHost: Range<Int>?

    mutating func note(name: Range<Int>, value: Range<Int>, in bytes: UnsafeRawBufferPointer) {
        switch name.count {
        case 14 where bytesEqual(bytes, name, "content-length", ignoringCase: true):
            let length = Self.decimal(bytes, value)
            if length == nil || (contentLength != nil && contentLength != length) { conflictingLengths = true }
            contentLength = length
        case 17 where bytesEqual(bytes, name, "transfer-encoding", ignoringCase: true):
            transferEncodingFields += 1
            HTTP1HeadParser.forEachToken(bytes, value) { token in
                transferEncodings += 1
                chunked = bytesEqual(bytes, token, "chunked", ignoringCase: true)
            }
        case 10 where bytesEqual(bytes, name, "connection", ignoringCase: true):
            connection.note(bytes, value)
        case 7 where bytesEqual(bytes, name, "upgrade", ignoringCase: true):
            upgrade = true
        case 4 where Self.isHost(bytes, at: name.lowerBound):
            hostFields += 1
            if invalidHost == nil, !HostSyntax.isValid(bytes, value) { invalidHost = value }
        default:
            break
        }
    }

    /// Whether the four bytes at `offset` are "host" in any case: one load and one compare,
    /// as every request has the field. OR-ing 0x20 into a byte gives a lower-case letter only
    /// for that letter's two cases.
    private static func isHost(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) | 0x2020_2020 == 0x7473_6F68
    }

    /// The framing, once the Host rules hold: an HTTP/1.1 request has one Host field, and no
    /// request has two or an invalid one (RFC 9112 section 3.2, 400).
    func framing(version: HTTPVersion, in bytes: UnsafeRawBufferPointer) throws -> HTTP1Framing {
        if hostFields > 1 { throw HTTP1RequestError.duplicateHost }
        if hostFields == 0, version.minor > 0 { throw HTTP1RequestError.missingHost }
        if let invalidHost { throw HTTP1RequestError.invalidHost(HTTP1HeadParser.string(bytes, invalidHost)) }
        let body: HTTP1Framing.Body
        if transferEncodingFields > 0 {
            // Only chunked is understood, once and last; with Content-Length as well, or on
            // HTTP/1.0, the framing is ambiguous (RFC 9112 section 6.1): 400, not a guess.
            guard chunked, transferEncodings == 1, version.minor > 0 else { throw HTTPParserError.invalidHeaderToken }
            guard contentLength == nil, !conflictingLengths else { throw HTTPParserError.unexpectedContentLength }
            body = .chunked
        } else if conflictingLengths {
            throw HTTPParserError.invalidContentLength
        } else if let contentLength, contentLength > 0 {
            body = .length(contentLength)
        } else {
            body = .none
        }
        return HTTP1Framing(
            body: body, declaresBody: contentLength != nil || conflictingLengths || transferEncodingFields > 0,
            keepAlive: connection.keepAlive(http1_0: version.minor == 0), upgrade: upgrade && connection.upgrade)
    }

    /// 1*DIGIT, at most 18 of them so that it fits.
    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }
}
