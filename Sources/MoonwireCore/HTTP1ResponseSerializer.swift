// HTTP/1.1 responses as bytes (RFC 9112): the status line and fields, and chunked framing.
// Moonwire writes them itself instead of through NIO's HTTPResponseEncoder so that a head and a
// small body leave as one buffer in one write, without three trips through the pipeline.
import NIOCore
import NIOHTTP1

enum HTTP1ResponseSerializer {
    /// Appends the status line, the handler's fields, the server's and the blank line that ends
    /// the head. Field names and values were checked where they were set (no CR, LF or NUL
    /// reaches here).
    static func writeHead(_ head: HTTPResponseHead, _ fields: ServerOwnedFields, into buffer: inout ByteBuffer) {
        writeStatusLine(head.status, version: head.version, into: &buffer)
        for (name, value) in head.headers where !fields.replaces(name) {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if let length = fields.contentLength {
            buffer.writeStaticString("content-length: ")
            buffer.writeString(String(length))
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("server: moonwire\r\ndate: ")
        buffer.writeString(fields.date)
        buffer.writeStaticString("\r\n")
        if let connection = fields.connection {
            buffer.writeStaticString("connection: ")
            buffer.writeStaticString(connection)
            buffer.writeStaticString("\r\n")
        }
        if fields.chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        buffer.writeStaticString("\r\n")
    }

    /// A 1xx head: the status line alone, no fields.
    static func writeInformational(_ status: HTTPResponseStatus, version: HTTPVersion, into buffer: inout ByteBuffer) {
        writeStatusLine(status, version: version, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    private static func writeStatusLine(_ status: HTTPResponseStatus, version: HTTPVersion, into buffer: inout ByteBuffer) {
        if version == .http1_1 {
            buffer.writeStaticString("HTTP/1.1 ")
        } else {
            buffer.writeString("HTTP/\(version.major).\(version.minor) ")
        }
        writeStatus(status, into: &buffer)
    }

    /// "200 OK\r\n"; the common statuses without building a string.
    private static func writeStatus(_ status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        switch status.code {
        case 200: buffer.writeStaticString("200 OK\r\n")
        case 204: buffer.writeStaticString("204 No Content\r\n")
        case 206: buffer.writeStaticString("206 Partial Content\r\n")
        case 304: buffer.writeStaticString("304 Not Modified\r\n")
        case 404: buffer.writeStaticString("404 Not Found\r\n")
        default:
            buffer.writeString(String(status.code))
            buffer.writeStaticString(" ")
            buffer.writeString(status.reasonPhrase)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Appends one chunk of a chunked body: its size in hex, the bytes, CRLF. An empty chunk
    /// would end the body, so the caller never passes one.
    static func writeChunk(_ chunk: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString(String(chunk.readableBytes, radix: 16))
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(chunk)
        buffer.writeStaticString("\r\n")
    }

    /// The chunk that ends a chunked body, with no trailer fields.
    static func writeLastChunk(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("0\r\n\r\n")
    }
}
