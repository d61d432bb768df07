// The head of a response an outbound HTTP/1.1 request got: its status and its fields, kept as
// ranges in the bytes they arrived in, so that handing them to a script builds each name and
// value once, where the script gets them, and no string or header table before.
import NIOCore
import NIOHTTP1

/// A response head as it arrived.
public struct OutboundResponseHead: Sendable {
    public let status: Int
    /// HTTP/1.0 rather than 1.1.
    public let isHTTP10: Bool
    let bytes: ByteBuffer
    let fields: [(name: Range<Int>, value: Range<Int>)]

    /// How many fields the head has.
    public var fieldCount: Int { fields.count }

    /// Calls `body` with each field's name and value, in the order they came.
    public func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeReadableBytes { raw in
            for field in fields {
                body(UnsafeRawBufferPointer(rebasing: raw[field.name]), UnsafeRawBufferPointer(rebasing: raw[field.value]))
            }
        }
    }

    /// Calls `body` with the bytes the head arrived in and where each field's name and value lie
    /// in them, for what keeps the fields as they are (a script's answer, which builds its
    /// header table only when the script looks at it).
    public func withFieldRanges<T>(_ body: (UnsafeRawBufferPointer, [(name: Range<Int>, value: Range<Int>)]) -> T) -> T {
        bytes.withUnsafeReadableBytes { body($0, fields) }
    }

    /// The value of the first field named `name` (lowercase), as text.
    public func first(_ name: StaticString) -> String? {
        bytes.withUnsafeReadableBytes { raw in
            fields.first { bytesEqual(raw, $0.name, name, ignoringCase: true) }.map { HTTP1HeadParser.string(raw, $0.value) }
        }
    }

    /// The head in NIO's form, for what needs it (following a redirect).
    public var httpResponseHead: HTTPResponseHead {
        var headers = HTTPHeaders()
        bytes.withUnsafeReadableBytes { raw in
            for field in fields {
                headers.add(name: HTTP1HeadParser.string(raw, field.name), value: HTTP1HeadParser.string(raw, field.value))
            }
        }
        return HTTPResponseHead(version: isHTTP10 ? .http1_0 : .http1_1, status: .init(statusCode: status), headers: headers)
    }
}
