// Percent-decoding of request targets (RFC 3986 section 2.1) and of form-encoded query parts.
// Foundation's removingPercentEncoding allocates through NSString and cannot tell us why it
// failed; this works on bytes and rejects what a server must reject.

/// Decoding of `%XX` escapes in paths and query strings.
public enum PercentEncoding {
    /// Decodes a path. Returns nil for a malformed escape or an encoded NUL, which a server
    /// answers with 400 rather than guessing.
    public static func decodePath<S: Collection>(_ bytes: S) -> [UInt8]? where S.Element == UInt8 {
        decode(bytes, plusIsSpace: false, rejectNUL: true)
    }

    /// Decodes one key or value of an `application/x-www-form-urlencoded` query: `+` is a space.
    /// Malformed escapes are kept literally, as browsers and nginx do for query strings.
    public static func decodeQueryComponent<S: Collection>(_ bytes: S) -> [UInt8] where S.Element == UInt8 {
        decode(bytes, plusIsSpace: true, rejectNUL: false) ?? Array(bytes)
    }

    private static func decode<S: Collection>(_ bytes: S, plusIsSpace: Bool, rejectNUL: Bool) -> [UInt8]?
    where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                guard first != bytes.endIndex, bytes.index(after: first) != bytes.endIndex,
                    let high = hexValue(bytes[first]), let low = hexValue(bytes[bytes.index(after: first)])
                else {
                    if plusIsSpace { out.append(byte); index = bytes.index(after: index); continue }
                    return nil
                }
                let decoded = high << 4 | low
                if decoded == 0 && rejectNUL { return nil }
                out.append(decoded)
                index = bytes.index(index, offsetBy: 3)
            } else {
                if byte == 0 && rejectNUL { return nil }
                out.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index = bytes.index(after: index)
            }
        }
        return out
    }

    /// The value of one hex digit, either case; nil for any other byte.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension PercentEncoding {
    /// Decodes `%XX` escapes (and nothing else: `+` stays a plus), as a URL component holds
    /// them. Returns nil for a malformed escape, which a script should see rather than get a guess.
    public static func decodeComponent<S: Collection>(_ bytes: S) -> [UInt8]? where S.Element == UInt8 {
        decode(bytes, plusIsSpace: false, rejectNUL: false)
    }

    /// Escapes every byte but RFC 3986's unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`
    /// (a space is `%20`), so the result is safe anywhere in a URL: path segment, query key or
    /// value, fragment.
    public static func encodeComponent<S: Collection>(_ bytes: S) -> [UInt8] where S.Element == UInt8 {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return out
    }
}
