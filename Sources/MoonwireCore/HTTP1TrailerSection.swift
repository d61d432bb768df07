// The trailer section of a chunked answer (RFC 9112 section 7.1.2): the fields after the last
// chunk, up to an empty line. Read line by line up to a cap, so that an upstream sending
// trailer fields without end cannot grow the server's memory: past the cap, or at a line that is
// not a field, the fields are dropped (as a recipient may, RFC 9112 section 7.1.2) and the
// section is taken as ended; the connection is then out of step and is not reused.
import NIOCore
import NIOHTTP1

/// The trailer fields of one chunked answer, as they arrived.
struct HTTP1TrailerSection {
    /// The most bytes the section may have, its lines and their CR LF counted.
    static let maxSize = 16 * 1024

    /// The fields, in the order they came; empty when there were none or they were dropped.
    private(set) var fields = HTTPHeaders()
    /// Why the fields were dropped (too large, or a line that is not a field).
    private(set) var dropped: String?
    private var size = 0

    /// Reads lines from `buffer`; true once the section ended (or was given up).
    mutating func read(_ buffer: inout ByteBuffer) -> Bool {
        while true {
            let lf: Int? = buffer.withUnsafeReadableBytes { HTTP1HeadParser.firstLF($0, from: 0) }
            guard let lf else {
                if size + buffer.readableBytes > Self.maxSize { return drop("trailer section larger than \(Self.maxSize) bytes") }
                return false
            }
            size += lf + 1
            guard size <= Self.maxSize else { return drop("trailer section larger than \(Self.maxSize) bytes") }
            var line = buffer.readSlice(length: lf)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == cr8 {
                line.moveWriterIndex(to: line.writerIndex - 1)
            }
            if line.readableBytes == 0 { return true }
            let field: (String, String)? = line.withUnsafeReadableBytes { raw in
                guard let (name, value) = try? HTTP1HeadParser.parseField(raw, 0..<raw.count) else { return nil }
                return (HTTP1HeadParser.string(raw, name), HTTP1HeadParser.string(raw, value))
            }
            guard let (name, value) = field else { return drop("malformed trailer field") }
            fields.add(name: name, value: value)
        }
    }

    private mutating func drop(_ reason: String) -> Bool {
        fields = HTTPHeaders()
        dropped = reason
        return true
    }
}
