// Tells HTTP from anything else by a connection's first bytes, when the scripts take unknown
// protocols (OnUnknownProtocol). It decides as soon as a byte rules HTTP out, and never waits
// on a slow HTTP client that can still turn out to be one: an HTTP/1.1 request starts with a
// method token (uppercase letters, `-` or `_`) and a space, HTTP/2 with its preface, and a
// TLS ClientHello with 0x16 0x03. So "PING\n" is decided at its "\n", "GE" waits for more,
// and at most `maxBytes` are ever held undecided.
import NIOCore

/// What a plain connection's first bytes are.
enum PlainProtocol: Equatable {
    case http1
    /// The HTTP/2 preface (prior knowledge).
    case http2
    /// A TLS record on a plain listener: handed to HTTP/1.1 as before (which refuses it).
    case tls
    /// Neither HTTP nor TLS.
    case unknown
}

enum RawProtocolSniffer {
    /// The HTTP/2 connection preface (RFC 9113 section 3.4).
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// The longest method token taken for HTTP. The longest registered method
    /// (UPDATEREDIRECTREF) has 17 characters.
    static let maxMethodLength = 20
    /// The most bytes that can be undecided: the preface, less its last byte.
    static let maxBytes = preface.count

    static func classify(_ bytes: ByteBuffer) -> FirstBytesVerdict<PlainProtocol> {
        let view = bytes.readableBytesView
        guard let first = view.first else { return .needMore }
        if first == 0x16 {
            guard view.count > 1 else { return .needMore }
            return view[view.startIndex + 1] == 0x03 ? .decided(.tls) : .decided(.unknown)
        }
        if isPrefaceSoFar(view) { return view.count >= preface.count ? .decided(.http2) : .needMore }
        for (offset, byte) in view.enumerated() {
            switch byte {
            case UInt8(ascii: " "): return offset == 0 ? .decided(.unknown) : .decided(.http1)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                if offset == maxMethodLength { return .decided(.unknown) }
            default: return .decided(.unknown)
            }
        }
        return .needMore
    }

    /// Whether the bytes so far agree with the preface (all of them, or its first part).
    private static func isPrefaceSoFar(_ view: ByteBufferView) -> Bool {
        let count = min(view.count, preface.count)
        return view.prefix(count).elementsEqual(preface[..<count])
    }
}
