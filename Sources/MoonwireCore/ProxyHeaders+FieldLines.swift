// How the client gets a proxied answer's head when no OnAfterForwardHTTP changes it: on HTTP/1.x
// as field lines copied from the upstream's head, the same fields `ProxyHeaders.responseHeaders`
// keeps in the same order, without the String per name and value and the header table that
// only the hook and HTTP/2's HPACK need.
import NIOCore
import NIOHTTP1

extension ProxyHeaders {
    /// Starts the client's streamed answer with the upstream's head: its fields as lines where
    /// the client takes them (HTTP/1.x), else as a table.
    static func startStream(_ head: OutboundResponseHead, via: Bool, on responder: HTTPResponder) -> HTTPResponseStream {
        if responder.takesFieldLines, let fields = responseFieldLines(head, via: via, keepsLength: true) {
            return responder.startStream(status: head.status, fieldLines: fields.lines, length: fields.length)
        }
        return responder.startStream(status: head.status, headers: responseHeaders(head, via: via))
    }

    /// Answers with the upstream's head and whole body. The fields go as a table when the
    /// server may compress the body (ResponseCompression reads and changes them); the server
    /// writes the body's length unless the client asked HEAD or the status has no content.
    static func respond(_ head: OutboundResponseHead, via: Bool, body: ByteBuffer, headOnly: Bool, on responder: HTTPResponder) {
        let compressible =
            head.status == 200 && (ResponseCompression.minimumSize...ResponseCompression.maximumSize).contains(body.readableBytes)
            && ResponseCompression.isCompressible(head.first("content-type"))
        let keepsLength = headOnly || HTTPResponseStatus(statusCode: head.status).forbidsBody
        if !compressible, responder.takesFieldLines, let fields = responseFieldLines(head, via: via, keepsLength: keepsLength) {
            return responder.respond(status: head.status, fieldLines: fields.lines, length: fields.length, body: body)
        }
        responder.respond(HTTPResponse(status: head.status, headers: responseHeaders(head, via: via), body: .bytes(body)))
    }

    /// `responseHeaders` as HTTP/1.1 field lines, for a client the server answers in HTTP/1.x:
    /// the same fields in the same order, less those the server writes itself (Server, Date,
    /// and Content-Length unless `keepsLength`), so the client gets the head byte for byte as
    /// `responseHeaders` would give it, without a String per name and value. `length` is the
    /// Content-Length kept, which frames the answer. nil when a byte of the head is above
    /// ASCII: a String repairs invalid UTF-8, these bytes would not (`responseHeaders` then).
    /// Values need no check of their own: the reader refused CR, LF and NUL in them.
    static func responseFieldLines(_ head: OutboundResponseHead, via: Bool, keepsLength: Bool) -> (lines: ByteBuffer, length: String?)? {
        head.bytes.withUnsafeReadableBytes { raw -> (lines: ByteBuffer, length: String?)? in
            guard isASCII(raw) else { return nil }
            var named: [Range<Int>] = []
            var chunked = false
            var vias = 0
            // Only three names matter before the copy: their lengths spare most comparisons.
            for field in head.fields {
                switch field.name.count {
                case 3: if bytesEqual(raw, field.name, "via", ignoringCase: true) { vias += 1 }
                case 10:
                    if bytesEqual(raw, field.name, "connection", ignoringCase: true) { connectionOptions(raw, field.value, into: &named) }
                case 17: if bytesEqual(raw, field.name, "transfer-encoding", ignoringCase: true) { chunked = true }
                default: break
                }
            }
            var length: Range<Int>?
            // Each line grows by at most ": " over its own bytes; Via adds its own one. Made at
            // its size: an empty buffer grown by the write cost about 150 instructions more.
            let size = raw.count + 2 * head.fields.count + 32
            var lines = ByteBufferAllocator().buffer(capacity: size)
            lines.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                var line = ByteCursor(out)
                for field in head.fields {
                    let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
                    let fieldKind = kind(name)
                    let isLength = fieldKind == .reframed && name.count == 14
                    switch fieldKind {
                    case .hopByHop, .connection, .via: continue
                    default: if isLength && chunked { continue }
                    }
                    if !named.isEmpty, named.contains(where: { sameName(raw, $0, field.name) }) { continue }
                    // The server writes its own Server and Date, and Content-Length unless kept
                    // (ServerOwnedFields).
                    if bytesEqual(name, 0..<name.count, "date", ignoringCase: true)
                        || bytesEqual(name, 0..<name.count, "server", ignoringCase: true)
                    {
                        continue
                    }
                    if isLength {
                        guard keepsLength else { continue }
                        length = field.value
                    }
                    line.append(bytes: name)
                    line.append(": ")
                    line.append(bytes: UnsafeRawBufferPointer(rebasing: raw[field.value]))
                    line.append("\r\n")
                }
                if via || vias > 0 {
                    line.append("via: ")
                    var first = true
                    for field in head.fields where kind(UnsafeRawBufferPointer(rebasing: raw[field.name])) == .via {
                        if !first { line.append(", ") }
                        first = false
                        line.append(bytes: UnsafeRawBufferPointer(rebasing: raw[field.value]))
                    }
                    if via { line.append(first ? "1.1 moonwire" : ", 1.1 moonwire") }
                    line.append("\r\n")
                }
                return line.count
            }
            return (lines, length.map { HTTP1HeadParser.string(raw, $0) })
        }
    }

    /// The field names a Connection value lists, as ranges of `raw`; keep-alive and close name
    /// fields that go anyway.
    private static func connectionOptions(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>, into named: inout [Range<Int>]) {
        HTTP1HeadParser.forEachToken(raw, value) { option in
            if !bytesEqual(raw, option, "keep-alive", ignoringCase: true), !bytesEqual(raw, option, "close", ignoringCase: true) {
                named.append(option)
            }
        }
    }

    /// Whether two names in `raw` are the same, in any letter case (the head is ASCII).
    private static func sameName(_ raw: UnsafeRawBufferPointer, _ one: Range<Int>, _ other: Range<Int>) -> Bool {
        guard one.count == other.count else { return false }
        for offset in 0..<one.count where lowercase(raw[one.lowerBound + offset]) != lowercase(raw[other.lowerBound + offset]) {
            return false
        }
        return true
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// Whether every byte is below 0x80, eight at a time.
    private static func isASCII(_ raw: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        var high: UInt64 = 0
        while index + 8 <= raw.count {
            high |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < raw.count {
            high |= UInt64(raw[index])
            index += 1
        }
        return ASCIIWord.isASCII(high)
    }
}
