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
        if responder.takesFieldLines, ResponseFieldLines.isASCII(head) {
            return responder.startStream(status: head.status, fieldLines: ResponseFieldLines(head, via: via, keepsLength: true))
        }
        return responder.startStream(status: head.status, headers: responseHeaders(head, via: via))
    }

    /// Answers with the upstream's head and whole body. The fields go as a table when the
    /// server may compress the body (ResponseCompression reads and changes them); the server
    /// writes the body's length unless the client asked HEAD or the status has no content.
    /// Consuming `head`: the field lines take it without a copy (two retains and releases).
    static func respond(_ head: consuming OutboundResponseHead, via: Bool, body: ByteBuffer, headOnly: Bool, on responder: HTTPResponder) {
        let status = head.status
        let compressible =
            status == 200 && (ResponseCompression.minimumSize...ResponseCompression.maximumSize).contains(body.readableBytes)
            && ResponseCompression.isCompressible(head.first("content-type"))
        let keepsLength = headOnly || HTTPResponse.forbidsBody(status)
        if !compressible, responder.takesFieldLines, ResponseFieldLines.isASCII(head) {
            return responder.respond(status: status, fieldLines: ResponseFieldLines(head, via: via, keepsLength: keepsLength), body: body)
        }
        responder.respond(HTTPResponse(status: status, headers: responseHeaders(head, via: via), body: .bytes(body)))
    }

    /// `responseHeaders` as HTTP/1.1 field lines, for a client the server answers in HTTP/1.x:
    /// the same fields in the same order, less those the server writes itself (Server, Date,
    /// and Content-Length unless `keepsLength`), so the client gets the head byte for byte as
    /// `responseHeaders` would give it, without a String per name and value. The serializer
    /// writes them straight into the client's head (`HeadFieldLines.proxied`): a buffer of
    /// their own cost about 300 instructions per answer to make, fill and free.
    /// Values need no check of their own: the reader refused CR, LF and NUL in them.
    struct ResponseFieldLines {
        private let head: OutboundResponseHead
        private let via: Bool
        /// The upstream sent Via fields, which the lines join into one.
        private let vias: Bool
        /// Field names the upstream's Connection lists: they go no further.
        private let named: [Range<Int>]
        /// The Content-Length kept, which frames the answer.
        let length: String?

        /// Whether the lines can copy `head`: not when a byte of it is above ASCII, as a String
        /// repairs invalid UTF-8 and these bytes would not (`responseHeaders` then).
        static func isASCII(_ head: borrowing OutboundResponseHead) -> Bool {
            head.bytes.withUnsafeReadableBytes { ProxyHeaders.isASCII($0) }
        }

        /// The lines of `head`, which `isASCII` accepted.
        init(_ head: consuming OutboundResponseHead, via: Bool, keepsLength: Bool) {
            var named: [Range<Int>] = []
            var vias = false
            var length: String?
            head.bytes.withUnsafeReadableBytes { raw in
                var chunked = false
                var lengthValue: Range<Int>?
                // Only four names matter before the copy: their lengths spare most comparisons.
                for field in head.fields {
                    switch field.name.count {
                    case 3: if bytesEqual(raw, field.name, "via", ignoringCase: true) { vias = true }
                    case 10:
                        if bytesEqual(raw, field.name, "connection", ignoringCase: true) {
                            ProxyHeaders.connectionOptions(raw, field.value, into: &named)
                        }
                    case 14: if bytesEqual(raw, field.name, "content-length", ignoringCase: true) { lengthValue = field.value }
                    case 17: if bytesEqual(raw, field.name, "transfer-encoding", ignoringCase: true) { chunked = true }
                    default: break
                    }
                }
                // Chunked coding frames the body, not the length; Connection may name it too.
                if let lengthValue, keepsLength, !chunked,
                    !named.contains(where: { bytesEqual(raw, $0, "content-length", ignoringCase: true) })
                {
                    length = HTTP1HeadParser.string(raw, lengthValue)
                }
            }
            self.head = head
            self.via = via
            self.vias = vias
            self.named = named
            self.length = length
        }

        /// The most bytes `write` writes: each line grows by at most ": " over its own bytes,
        /// and Via adds its own one.
        var maximumSize: Int { head.bytes.readableBytes + 2 * head.fields.count + 32 }

        /// Writes the lines; `line` has room for `maximumSize` bytes.
        func write(into line: inout ByteCursor) {
            head.bytes.withUnsafeReadableBytes { raw in
                for field in head.fields {
                    let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
                    switch ProxyHeaders.kind(name) {
                    case .hopByHop, .connection, .via: continue
                    // Content-Length is `length`, when kept.
                    case .reframed where name.count == 14: if length == nil { continue }
                    default: break
                    }
                    if !named.isEmpty, named.contains(where: { ProxyHeaders.sameName(raw, $0, field.name) }) { continue }
                    // The server writes its own Server and Date (ServerOwnedFields).
                    if bytesEqual(name, 0..<name.count, "date", ignoringCase: true)
                        || bytesEqual(name, 0..<name.count, "server", ignoringCase: true)
                    {
                        continue
                    }
                    line.append(bytes: name)
                    line.append(": ")
                    line.append(bytes: UnsafeRawBufferPointer(rebasing: raw[field.value]))
                    line.append("\r\n")
                }
                if via || vias {
                    line.append("via: ")
                    var first = true
                    for field in head.fields where ProxyHeaders.kind(UnsafeRawBufferPointer(rebasing: raw[field.name])) == .via {
                        if !first { line.append(", ") }
                        first = false
                        line.append(bytes: UnsafeRawBufferPointer(rebasing: raw[field.value]))
                    }
                    if via { line.append(first ? "1.1 moonwire" : ", 1.1 moonwire") }
                    line.append("\r\n")
                }
            }
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
