// Lowercase hexadecimal, two digits a byte: session ids, digests, UUIDs, certificate serials,
// `moonwire.crypto.hex` and the \u00XX escapes of JSON all write bytes this one way.

/// Bytes as lowercase hexadecimal digits.
public enum Hexadecimal {
    /// The two digits of `byte`, high nibble first, appended to `out`.
    @inlinable
    public static func append(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(digit(byte >> 4))
        out.append(digit(byte & 0x0F))
    }

    /// `bytes` as a string of two digits per byte.
    public static func string(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes { append(byte, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The digit of a value below 16.
    @inlinable
    public static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
