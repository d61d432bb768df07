// One server-sent event as it goes on the wire (the WHATWG "event stream" format): fields
// written once per event, so a broadcast to many streams encodes its message once.
import NIOCore

/// An event of a `text/event-stream` answer. Encoding is the only place that knows the format.
public struct ServerSentEvent: Sendable, Equatable {
    /// Why a field cannot be sent.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        /// `event` or `id` holds a line break (or `id` a NUL): it would end the field early and
        /// let the rest be read as fields of the client's choosing.
        case lineBreak(field: String)

        public var description: String {
            switch self {
            case .lineBreak(let field): "\(field) may not contain CR, LF or NUL"
            }
        }
    }

    /// The event type (`addEventListener(type)` in the browser); nil is "message".
    public var event: String?
    /// The payload; each of its lines becomes a `data:` line, and the client joins them with LF.
    public var data: String?
    /// The id the browser sends back as Last-Event-ID when it reconnects.
    public var id: String?
    /// Milliseconds the browser waits before reconnecting.
    public var retry: Int?

    /// An event with these fields; `event` and `id` are checked, since a line break in them
    /// would inject fields.
    public init(event: String? = nil, data: String? = nil, id: String? = nil, retry: Int? = nil) throws(Refusal) {
        if let event, event.utf8.contains(where: { $0 == 10 || $0 == 13 }) { throw .lineBreak(field: "event") }
        if let id, id.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }) { throw .lineBreak(field: "id") }
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry
    }

    /// The event's bytes, ending with the blank line that dispatches it.
    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        if let event { Self.writeField("event", event.utf8, into: &buffer) }
        if let id { Self.writeField("id", id.utf8, into: &buffer) }
        if let retry { Self.writeField("retry", String(retry).utf8, into: &buffer) }
        if let data { Self.writeData(data.utf8, into: &buffer) }
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }

    /// A message of a broadcast as one event of type "message" (data lines only).
    public static func encodedMessage(_ payload: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        payload.withUnsafeReadableBytes { writeData($0, into: &buffer) }
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }

    /// A comment line: ignored by clients, it keeps proxies and the client from timing out.
    public static let keepAlive = ByteBuffer(staticString: ": keepalive\n\n")

    /// Writes `data:` lines, one per line of `bytes` (split at CRLF, CR or LF, as the client
    /// splits them), so that a payload's line breaks arrive as they were.
    private static func writeData<Bytes: Collection<UInt8>>(_ bytes: Bytes, into buffer: inout ByteBuffer) {
        var line: [UInt8] = []
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == 10 && previous == 13 {
                previous = byte
                continue
            }
            previous = byte
            if byte == 10 || byte == 13 {
                writeField("data", line, into: &buffer)
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(byte)
            }
        }
        writeField("data", line, into: &buffer)
    }

    private static func writeField<Bytes: Sequence<UInt8>>(_ name: String, _ value: Bytes, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeString(": ")
        buffer.writeBytes(value)
        buffer.writeInteger(UInt8(ascii: "\n"))
    }
}
