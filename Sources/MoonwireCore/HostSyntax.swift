// The syntax of the host a request names (RFC 9110 section 7.2: uri-host [ ":" port ], uri-host
// being RFC 3986 section 3.2.2's), in the Host field of an HTTP/1.x request and in the authority
// of an absolute-form target. A value outside it is answered 400 (RFC 9112 section 3.2) instead
// of reaching virtual-host patterns and scripts. Checked over bytes by hand: the head parser
// has the field's bytes, and Foundation's URLComponents would build strings and accept more.

/// The host syntax check; `HTTPRequest.hostWithoutPort` is where a port is cut off.
enum HostSyntax {
    /// Whether `bytes[range]` is `uri-host [ ":" port ]`: an IP literal in brackets or a
    /// reg-name (which IPv4 addresses are too), then an optional colon and decimal digits. An
    /// empty value is valid: it is the Host field of a request whose target has no authority.
    static func isValid(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        var index = range.lowerBound
        let end = range.upperBound
        if index < end, bytes[index] == UInt8(ascii: "[") {
            index += 1
            let start = index
            while index < end, bytes[index] != UInt8(ascii: "]") {
                guard isLiteralByte(bytes[index]) else { return false }
                index += 1
            }
            guard index < end, index > start else { return false }
            index += 1
        } else {
            // Neither ":" nor "%" is a reg-name byte: the loop tests each byte once, and only the
            // byte it stops at is looked at again. Every request's Host passes through here.
            while index < end {
                if isRegNameByte(bytes[index]) {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "%") {
                    guard index + 2 < end, isHexDigit(bytes[index + 1]), isHexDigit(bytes[index + 2]) else { return false }
                    index += 3
                } else {
                    break
                }
            }
        }
        guard index < end else { return true }
        guard bytes[index] == UInt8(ascii: ":") else { return false }
        for position in index + 1..<end where bytes[position] &- UInt8(ascii: "0") >= 10 {
            return false
        }
        return true
    }

    /// Whether `value` is a valid host (see above), and not empty.
    static func isValidNonEmpty(_ value: Substring) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            return raw.count > 0 && raw[0] != UInt8(ascii: ":") && isValid(raw, 0..<raw.count)
        }
    }

    /// unreserved and sub-delims: a table lookup per byte, as every request's Host passes here.
    @inline(__always)
    private static func isRegNameByte(_ byte: UInt8) -> Bool {
        regNameBytes.utf8Start[Int(byte)] == UInt8(ascii: "1")
    }

    /// "1" at the position of each byte of a reg-name: letters, digits, `-._~` and `!$&'()*+,;=`
    /// (RFC 3986 section 2), 64 bytes per line.
    private static let regNameBytes: StaticString = """
        0000000000000000000000000000000001001011111111101111111111010100\
        0111111111111111111111111110000101111111111111111111111111100010\
        0000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000
        """

    /// What an IPv6 address or IPvFuture may hold: a reg-name's bytes, colons, and the `%` of
    /// a zone identifier (RFC 6874).
    private static func isLiteralByte(_ byte: UInt8) -> Bool {
        isRegNameByte(byte) || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "%")
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        PercentEncoding.hexValue(byte) != nil
    }
}
