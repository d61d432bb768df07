// HTTP/1.1 responses as bytes (RFC 9112): the status line and fields, and chunked framing.
// Moonwire writes them itself instead of through NIO's HTTPResponseEncoder so that a head and a
// small body leave as one buffer in one write, without three trips through the pipeline. The
// head is measured first and copied in one pass: a write per piece would check the buffer's
// capacity and uniqueness a dozen times per response.
import Glibc
import NIOCore
import NIOHTTP1

/// The fields of a head given as HTTP/1.1 lines, none of them a field the server owns.
enum HeadFieldLines {
    /// Serialized beforehand by `HTTP1ResponseSerializer.fieldLines(_:)` (a cached file's,
    /// made once).
    case serialized(ByteBuffer)
    /// A proxied upstream's, written from its head straight into the client's.
    case proxied(ProxyHeaders.ResponseFieldLines)

    /// The most bytes `write` writes.
    var maximumSize: Int {
        switch self {
        case .serialized(let lines): lines.readableBytes
        case .proxied(let lines): lines.maximumSize
        }
    }

    func write(into out: inout ByteCursor) {
        switch self {
        case .serialized(let lines): lines.withUnsafeReadableBytes { out.append(bytes: $0) }
        case .proxied(let lines): lines.write(into: &out)
        }
    }
}

enum HTTP1ResponseSerializer {
    /// Appends the status line, the handler's fields, the server's and the blank line that ends
    /// the head. Field names and values were checked where they were set (no CR, LF or NUL
    /// reaches here). `fieldLines`, when given, are written in place of `headers`.
    static func writeHead(
        status: Int, version: HTTPVersion, headers: HTTPHeaders, fields: ServerOwnedFields,
        fieldLines: HeadFieldLines? = nil, into buffer: inout ByteBuffer
    ) {
        let reason = commonReason(status)
        let phrase = reason == nil ? HTTPResponseStatus(statusCode: status).reasonPhrase : ""
        // Status line, the server's fields with their values, and room for the numbers.
        var size = 256 + fields.date.utf8.count + phrase.utf8.count
        // `fieldLines` is used through `?.`, not bound: a binding copied it (retaining its
        // references) and destroyed the copy through its generic value witness.
        if let linesSize = fieldLines?.maximumSize {
            size += linesSize
        } else {
            for (name, value) in headers { size += name.utf8.count + value.utf8.count + 4 }
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = ByteCursor(raw)
            if version == .http1_1 {
                out.append("HTTP/1.1 ")
            } else {
                out.append("HTTP/")
                out.append(decimal: version.major)
                out.append(".")
                out.append(decimal: version.minor)
                out.append(" ")
            }
            if let reason {
                out.append(reason)
            } else {
                out.append(decimal: status)
                out.append(" ")
                out.append(contentsOf: phrase)
                out.append("\r\n")
            }
            if fieldLines != nil {
                fieldLines?.write(into: &out)
            } else {
                for (name, value) in headers where !fields.replaces(name) {
                    out.append(contentsOf: name)
                    out.append(": ")
                    out.append(contentsOf: value)
                    out.append("\r\n")
                }
            }
            // Literals joined where they meet: each append is a copy of its own.
            if let length = fields.contentLength {
                out.append("content-length: ")
                out.append(decimal: length)
                out.append("\r\nserver: moonwire\r\ndate: ")
            } else {
                out.append("server: moonwire\r\ndate: ")
            }
            out.append(contentsOf: fields.date)
            if let connection = fields.connection {
                out.append("\r\nconnection: ")
                out.append(connection)
            }
            out.append(fields.chunked ? "\r\ntransfer-encoding: chunked\r\n\r\n" : "\r\n\r\n")
            return out.count
        }
    }

    /// A 1xx head: the status line and the fields given (none for 100 Continue; the Link
    /// fields of 103 Early Hints), without the server's own.
    static func writeInformational(_ status: HTTPResponseStatus, version: HTTPVersion, headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        // NIO has no name for 103 (RFC 8297).
        let reason = status.code == 103 && status.reasonPhrase.isEmpty ? "Early Hints" : status.reasonPhrase
        buffer.writeString("HTTP/\(version.major).\(version.minor) \(status.code) \(reason)\r\n")
        writeFields(headers, into: &buffer)
    }

    /// `headers` as the lines of a head ("name: value\r\n" each), for `writeHead`'s
    /// `fieldLines`.
    static func fieldLines(_ headers: HTTPHeaders) -> ByteBuffer {
        var buffer = ByteBuffer()
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        return buffer
    }

    /// "200 OK\r\n" and the like for the statuses most answers have.
    private static func commonReason(_ code: Int) -> StaticString? {
        switch code {
        case 200: return "200 OK\r\n"
        case 204: return "204 No Content\r\n"
        case 206: return "206 Partial Content\r\n"
        case 301: return "301 Moved Permanently\r\n"
        case 302: return "302 Found\r\n"
        case 304: return "304 Not Modified\r\n"
        case 400: return "400 Bad Request\r\n"
        case 404: return "404 Not Found\r\n"
        case 500: return "500 Internal Server Error\r\n"
        default: return nil
        }
    }

    /// Appends one chunk of a chunked body: its size in hex, the bytes, CRLF. An empty chunk
    /// would end the body, so the caller never passes one.
    static func writeChunk(_ chunk: ByteBuffer, into buffer: inout ByteBuffer) {
        writeChunkSize(chunk.readableBytes, into: &buffer)
        buffer.writeImmutableBuffer(chunk)
        buffer.writeStaticString("\r\n")
    }

    /// The line that announces a chunk of `size` bytes.
    static func writeChunkSize(_ size: Int, into buffer: inout ByteBuffer) {
        buffer.writeString(String(size, radix: 16))
        buffer.writeStaticString("\r\n")
    }

    /// The chunk that ends a chunked body, with no trailer fields.
    /// The last chunk, with the trailer fields given (RFC 9112 section 7.1.2).
    static func writeLastChunk(trailers: HTTPHeaders? = nil, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("0\r\n")
        writeFields(trailers ?? [:], into: &buffer)
    }

    /// Fields and the empty line that ends them.
    private static func writeFields(_ fields: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in fields {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}
