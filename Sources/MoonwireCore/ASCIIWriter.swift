// Short ASCII header values (dates, entity tags) written byte by byte into the string's own
// storage. String interpolation and String(_:radix:) cost thousands of instructions for what
// is a handful of digits, on every static file served.

/// Appends ASCII bytes to a string being built by `String(ascii:_:)`.
struct ASCIIWriter {
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0

    fileprivate init(_ buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

    mutating func append(_ byte: UInt8) {
        // A writer past its capacity would write past the string's storage.
        precondition(count < buffer.count, "ASCIIWriter: capacity exceeded")
        buffer[count] = byte
        count += 1
    }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { for byte in $0 { append(byte) } }
    }

    /// `length` bytes of `text` from `offset`: one name of a table of fixed-width names.
    mutating func append(_ text: StaticString, offset: Int, length: Int) {
        precondition(offset >= 0 && offset + length <= text.utf8CodeUnitCount, "ASCIIWriter: outside the table")
        text.withUTF8Buffer { for byte in $0[offset..<offset + length] { append(byte) } }
    }

    /// `value` in `radix` (lowercase letters above 9), padded with zeros to `width` digits,
    /// with a minus sign first when negative, as `String(value, radix:)` writes it.
    mutating func append(_ value: Int, radix: UInt = 10, width: Int = 1) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var length = 1
        var rest = value.magnitude / radix
        while rest > 0 {
            length += 1
            rest /= radix
        }
        for _ in length..<max(length, width) { append(UInt8(ascii: "0")) }
        for _ in 0..<length { append(UInt8(ascii: "0")) }
        var remaining = value.magnitude
        for position in stride(from: count - 1, through: count - length, by: -1) {
            let digit = UInt8(remaining % radix)
            buffer[position] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            remaining /= radix
        }
    }
}

extension String {
    /// A string of at most `capacity` ASCII bytes, written by `body`.
    init(ascii capacity: Int, _ body: (inout ASCIIWriter) -> Void) {
        self.init(unsafeUninitializedCapacity: capacity) { buffer in
            var writer = ASCIIWriter(buffer)
            body(&writer)
            return writer.count
        }
    }
}
