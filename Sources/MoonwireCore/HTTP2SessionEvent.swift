// What an HTTP2ServerSession reports to the connection that drives it: the events of its
// streams and of the connection, in the order nghttp2 saw them. Plain values, so a test (or
// the NIO handler) reads them without callbacks.
import NIOCore
import NIOHTTP1

/// A request's header section as HTTP/2 carries it: the pseudo-header fields apart, the
/// regular fields as HTTPHeaders (names lowercase, as nghttp2 has checked).
struct HTTP2RequestHead: Equatable {
    var stream: Int32
    var method: String
    /// Absent only on a plain CONNECT (RFC 9113 8.5).
    var scheme: String?
    var authority: String?
    /// Absent only on a plain CONNECT.
    var path: String?
    /// The `:protocol` of an extended CONNECT (RFC 8441), such as "websocket".
    var `protocol`: String?
    /// Regular fields in arrival order. A cookie split into several fields (RFC 9113 8.2.3)
    /// stays split: one `cookie` entry per field.
    var fields: HTTPHeaders
    /// END_STREAM came with the head: the request has no content.
    var endStream: Bool
}

/// One thing that happened on the session.
enum HTTP2SessionEvent: Equatable {
    /// A new request. Its body follows as `requestBody` events unless `endStream`.
    case requestHead(HTTP2RequestHead)
    /// Request content; `end` marks the last of it (the bytes may then be empty). The caller
    /// must hand every byte back with `consume(stream:bytes:)` once it has used them, or
    /// the client's window stays shut.
    case requestBody(stream: Int32, ByteBuffer, end: Bool)
    /// The request's trailer section; it ends the request.
    case requestTrailers(stream: Int32, HTTPHeaders)
    /// A new stream went past SETTINGS_MAX_CONCURRENT_STREAMS and was refused
    /// (RST_STREAM REFUSED_STREAM); the connection goes on. `firstOnConnection`: report it.
    case streamRefused(stream: Int32, firstOnConnection: Bool)
    /// A malformed request (RFC 9113 section 8.1.1: a bad or forbidden field, a missing
    /// pseudo-header, content that contradicts its content-length): the stream is reset with
    /// PROTOCOL_ERROR and the connection goes on. Reported once per stream; `reason` is a
    /// fixed text, nothing the client sent. A stream whose head was reported is then closed.
    /// Past `Settings.maxMalformedRequests` on the connection, `connectionError` instead.
    case malformedRequest(stream: Int32, reason: String)
    /// The client reset the stream (RST_STREAM) with this HTTP/2 error code.
    case streamReset(stream: Int32, error: UInt32)
    /// The stream is closed, for any reason; its queued answer bytes were dropped. Only
    /// streams whose head was reported (or that were promised) are reported.
    case streamClosed(stream: Int32, error: UInt32)
    /// Everything queued with `sendData` on the stream has been framed into the output: a
    /// streaming handler that waited may produce more.
    case sendQueueDrained(stream: Int32)
    /// The client sent GOAWAY: streams above `lastStream` were not processed.
    case goAwayReceived(lastStream: Int32, error: UInt32)
    /// The connection is broken beyond repair: the session has queued (or, when reported by
    /// `takeOutput`, framed) its GOAWAY with this error code. The caller writes the output
    /// and closes the connection.
    case connectionError(error: UInt32)
}
