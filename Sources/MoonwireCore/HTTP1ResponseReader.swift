// Reads one HTTP/1.1 response (RFC 9112) out of the bytes an outbound connection receives: the
// status line and fields, then the body as the fields frame it (a length, chunks, or until the
// connection closes), up to a cap. Our own rather than NIO's HTTPResponseDecoder: the outbound
// client makes one request per request it serves, and NIO's decoder (llhttp behind generic
// handlers, a header table and strings for every field) was a third of the instructions of a
// proxied request. A reader that streams (for the reverse proxy) hands on interim (1xx) heads,
// then the final head as soon as it arrives and the body in the pieces it arrives in; a reader
// that gathers skips the interim heads. Interim heads are bounded (`maxInterimSize` together)
// and so are trailer fields (HTTP1TrailerSection).
import NIOCore

/// The state of reading one response; feed it what arrives until it completes.
struct HTTP1ResponseReader {
    enum ReadError: Error, Equatable {
        case malformed(String)
        case headTooLarge
        case bodyTooLarge
        /// More than `maxInterimSize` of 1xx heads before the final one.
        case tooManyInterim
    }

    /// What reading one response came to.
    enum Progress {
        case needMore
        /// A streaming reader's interim (1xx) head; more heads follow, then the final one.
        case interim(OutboundResponseHead)
        /// A streaming reader's head; the body follows through `takeBody`.
        case headArrived(OutboundResponseHead)
        /// The response, and whether the connection can carry another exchange.
        case complete(OutboundResponseHead, ByteBuffer, reusable: Bool)
    }

    private enum Body {
        case length(Int)
        /// Chunks: the bytes left of the current chunk's data, or nil when a size line comes.
        case chunked(left: Int?, inTrailers: Bool)
        case untilClose
    }

    /// The largest head taken.
    static let maxHeadSize = 64 * 1024
    /// The most bytes the interim (1xx) heads of one answer may have together: an upstream
    /// that sends them without end is cut off rather than waited for.
    static let maxInterimSize = 64 * 1024

    let maxBodySize: Int
    /// The request was HEAD: its answer has no body, whatever its fields say.
    let isHead: Bool
    /// The body is taken piece by piece (`takeBody`) instead of gathered.
    let streams: Bool
    /// The request asked for an upgrade: a 101 is the answer, and the bytes after it are the
    /// new protocol's.
    let asksUpgrade: Bool
    private var headHandedOn = false
    private var head: OutboundResponseHead?
    private var keepAlive = false
    private var body: Body = .untilClose
    private var data = ByteBuffer()
    private var interimSize = 0
    /// The trailer fields of a chunked body, once it ended.
    private(set) var trailers = HTTP1TrailerSection()
    /// Where the search for the end of the head goes on from.
    private var searched = 0

    init(maxBodySize: Int, isHead: Bool, streams: Bool = false, asksUpgrade: Bool = false) {
        self.maxBodySize = streams ? .max : maxBodySize
        self.isHead = isHead
        self.streams = streams
        self.asksUpgrade = asksUpgrade
    }

    /// The answer was 101 Switching Protocols to an upgrade request.
    private(set) var upgraded = false

    /// Takes what arrived (and keeps what it cannot use yet in `buffer`), one answer on its own.
    mutating func read(_ buffer: inout ByteBuffer) throws(ReadError) -> Progress {
        var fields = HeadFieldStrings()
        return try read(&buffer, fields: &fields)
    }

    /// Takes what arrived (and keeps what it cannot use yet in `buffer`); `fields` has the
    /// field lines of the connection's previous answer, which the same lines again reuse.
    mutating func read(_ buffer: inout ByteBuffer, fields: inout HeadFieldStrings) throws(ReadError) -> Progress {
        while head == nil {
            switch try readHead(&buffer, fields: &fields) {
            case .needMore: return .needMore
            case .interim(let interim): if streams { return .interim(interim) }
            case .final: break
            }
        }
        if streams, !headHandedOn {
            headHandedOn = true
            return .headArrived(head!)
        }
        return try readBody(&buffer)
    }

    /// The connection closed: a body delimited by the close is complete; anything else is cut.
    mutating func closed() -> OutboundResponseHead? {
        guard let head, case .untilClose = body else { return nil }
        return head
    }

    /// The body gathered so far (for a body that ends with the connection).
    var bodySoFar: ByteBuffer { data }

    /// The body bytes read since the last call (a streaming reader's next piece).
    mutating func takeBody() -> ByteBuffer {
        defer { data = ByteBuffer() }
        return data
    }

    private enum HeadRead {
        case needMore
        case interim(OutboundResponseHead)
        /// The final head, now in `head`.
        case final
    }

    private mutating func readHead(_ buffer: inout ByteBuffer, fields: inout HeadFieldStrings) throws(ReadError) -> HeadRead {
        // A head that came whole (nearly every one) is parsed as its end is looked for, in one
        // pass; one that trickles in is searched from where the last search stopped, so that
        // its start is not searched again at every read, and parsed once complete.
        let found: ParsedHead? = try buffer.withUnsafeReadableBytes { raw throws(ReadError) in
            if searched > 0, HTTP1HeadParser.headEnd(in: raw, from: searched - 3) == nil { return nil }
            return try Self.parseHead(raw, fields: &fields)
        }
        guard let parsed = found else {
            searched = buffer.readableBytes
            if buffer.readableBytes > Self.maxHeadSize { throw .headTooLarge }
            return .needMore
        }
        searched = 0
        let end = parsed.end
        guard end <= Self.maxHeadSize else { throw .headTooLarge }
        let head = OutboundResponseHead(status: parsed.status, isHTTP10: parsed.isHTTP10, bytes: buffer.readSlice(length: end)!, fields: parsed.fields)
        let status = parsed.status
        if status == 101 {
            // Only the answer to an upgrade request may switch protocols (RFC 9110 section 15.2.2).
            guard asksUpgrade else { throw .malformed("101 Switching Protocols to a request without Upgrade") }
        } else if status < 200 {
            // 100 Continue, 103 Early Hints...: interim heads come before the final one. They
            // have no content: a length is ignored, a transfer coding is a protocol error (RFC
            // 9112 section 6.1), the sign of an upstream framing answers its own way.
            guard !parsed.transferEncoding else { throw .malformed("Transfer-Encoding in a 1xx head") }
            interimSize += end
            guard interimSize <= Self.maxInterimSize else { throw .tooManyInterim }
            return .interim(head)
        }
        let switches = status == 101
        upgraded = switches
        self.head = head
        keepAlive = parsed.keepAlive && !switches
        body = parsed.body
        if isHead || switches || status == 204 || status == 304 { body = .length(0) }
        if case .length(let length) = body, length > maxBodySize { throw .bodyTooLarge }
        return .final
    }

    private mutating func readBody(_ buffer: inout ByteBuffer) throws(ReadError) -> Progress {
        switch body {
        case .length(let left):
            let taken = min(left, buffer.readableBytes)
            try append(&buffer, taken)
            body = .length(left - taken)
            guard left - taken == 0 else { return .needMore }
            return .complete(takeHead(), data, reusable: keepAlive && buffer.readableBytes == 0)
        case .untilClose:
            try append(&buffer, buffer.readableBytes)
            return .needMore
        case .chunked(var left, var inTrailers):
            defer { body = .chunked(left: left, inTrailers: inTrailers) }
            while true {
                if inTrailers {
                    guard trailers.read(&buffer) else { return .needMore }
                    // Trailers given up on leave the connection out of step.
                    let reusable = keepAlive && buffer.readableBytes == 0 && trailers.dropped == nil
                    return .complete(takeHead(), data, reusable: reusable)
                }
                if let remaining = left {
                    if remaining > 0 {
                        let taken = min(remaining, buffer.readableBytes)
                        try append(&buffer, taken)
                        left = remaining - taken
                        if left! > 0 { return .needMore }
                    }
                    // The CR LF after a chunk's data.
                    guard let end = try Self.line(&buffer) else { return .needMore }
                    guard end.readableBytes == 0 else { throw .malformed("chunk longer than its size") }
                    left = nil
                    continue
                }
                guard let line = try Self.line(&buffer) else { return .needMore }
                let size = try Self.chunkSize(line)
                if size == 0 {
                    inTrailers = true
                } else {
                    guard data.readableBytes + size <= maxBodySize else { throw .bodyTooLarge }
                    left = size
                }
            }
        }
    }

    /// The head, handed on with the complete answer: moved rather than copied, the reader is
    /// done with it.
    private mutating func takeHead() -> OutboundResponseHead {
        head.take()!
    }

    private mutating func append(_ buffer: inout ByteBuffer, _ count: Int) throws(ReadError) {
        guard count > 0 else { return }
        guard data.readableBytes + count <= maxBodySize else { throw .bodyTooLarge }
        var slice = buffer.readSlice(length: count)!
        if data.readableBytes == 0, data.capacity == 0 {
            data = slice
        } else {
            data.writeBuffer(&slice)
        }
    }

    /// The next line without its CR LF (or LF), or nil when it has not all arrived; a line of
    /// more than 4 KiB (a chunk size with extensions, a trailer) is refused.
    private static func line(_ buffer: inout ByteBuffer) throws(ReadError) -> ByteBuffer? {
        let lf: Int? = buffer.withUnsafeReadableBytes { HTTP1HeadParser.firstLF($0, from: 0) }
        guard let lf else {
            if buffer.readableBytes > 4096 { throw .malformed("line too long") }
            return nil
        }
        var line = buffer.readSlice(length: lf)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == cr8 {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return line
    }

    /// A chunk-size line: hexadecimal digits, then optional extensions after `;`.
    private static func chunkSize(_ line: ByteBuffer) throws(ReadError) -> Int {
        var size = 0
        var digits = 0
        for byte in line.readableBytesView {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                guard digits > 0 else { throw .malformed("bad chunk size") }
                return size
            default: throw .malformed("bad chunk size")
            }
            digits += 1
            guard digits <= 15 else { throw .malformed("chunk size too large") }
            size = size << 4 | value
        }
        guard digits > 0 else { throw .malformed("bad chunk size") }
        return size
    }

    /// A head's status line and fields, where they lie in the bytes it came in, and what they
    /// say of the body and the connection.
    private struct ParsedHead {
        var status: Int
        var isHTTP10: Bool
        var fields: [(name: Range<Int>, value: Range<Int>)]
        var keepAlive: Bool
        var body: Body
        var transferEncoding: Bool
        /// Where the head ends, its empty line included.
        var end: Int
    }

    /// Parses the head at the start of `raw` line by line; nil when its empty line has not
    /// arrived yet (a line that is complete and invalid is refused at once). A field line equal
    /// to the previous answer's at its position is not parsed again (`fieldLines`), but what it
    /// says of the framing and the connection is read from it all the same.
    private static func parseHead(_ raw: UnsafeRawBufferPointer, fields fieldLines: inout HeadFieldStrings) throws(ReadError) -> ParsedHead? {
        guard let firstLF = HTTP1HeadParser.firstLF(raw, from: 0) else { return nil }
        // "HTTP/1.1 200 reason"
        guard firstLF >= 12, bytesEqual(raw, 0..<7, "HTTP/1."), raw[7] == UInt8(ascii: "0") || raw[7] == UInt8(ascii: "1"),
            raw[8] == UInt8(ascii: " "), raw[12] == UInt8(ascii: " ") || raw[12] == cr8 || raw[12] == lf8
        else { throw .malformed("bad status line") }
        var status = 0
        for index in 9..<12 {
            guard raw[index] >= UInt8(ascii: "0"), raw[index] <= UInt8(ascii: "9") else { throw .malformed("bad status") }
            status = status * 10 + Int(raw[index] - UInt8(ascii: "0"))
        }
        guard status >= 100 else { throw .malformed("bad status") }
        let isHTTP10 = raw[7] == UInt8(ascii: "0")
        fieldLines.startHead()
        var connection = ConnectionOptions()
        var length: Int?
        var chunked = false
        var transferEncoding = false
        var position = firstLF + 1
        while let lf = HTTP1HeadParser.firstLF(raw, from: position) {
            let end = lf > position && raw[lf - 1] == cr8 ? lf - 1 : lf
            guard end > position else {
                let body: Body =
                    transferEncoding ? (chunked ? .chunked(left: nil, inTrailers: false) : .untilClose) : length.map { .length($0) } ?? .untilClose
                var keepAlive = connection.keepAlive(http1_0: isHTTP10)
                if case .untilClose = body { keepAlive = false }
                return ParsedHead(
                    status: status, isHTTP10: isHTTP10, fields: fieldLines.endAnswerHead(), keepAlive: keepAlive, body: body,
                    transferEncoding: transferEncoding, end: lf + 1)
            }
            guard let (name, value) = try? fieldLines.answerField(raw, line: position..<end) else { throw .malformed("bad header field") }
            position = lf + 1
            // Only three names matter here: their lengths spare most comparisons.
            switch name.count {
            case 14 where bytesEqual(raw, name, "content-length", ignoringCase: true):
                guard let parsed = Self.decimal(raw, value), length == nil || length == parsed else {
                    throw .malformed("bad content-length")
                }
                length = parsed
            case 17 where bytesEqual(raw, name, "transfer-encoding", ignoringCase: true):
                transferEncoding = true
                var last = false
                HTTP1HeadParser.forEachToken(raw, value) { last = bytesEqual(raw, $0, "chunked", ignoringCase: true) }
                chunked = last
            case 10 where bytesEqual(raw, name, "connection", ignoringCase: true):
                // Nearly every upstream that keeps its connections says just that: one compare
                // instead of splitting the list.
                if bytesEqual(raw, value, "keep-alive", ignoringCase: true) {
                    connection.keepAliveToken = true
                } else {
                    connection.note(raw, value)
                }
            default:
                break
            }
        }
        return nil
    }

    private static func decimal(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            guard raw[index] >= UInt8(ascii: "0"), raw[index] <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(raw[index] - UInt8(ascii: "0"))
        }
        return value
    }
}
