// Writing a head (a response's, a forwarded request's) into memory measured beforehand: one
// ByteBuffer write for many pieces, where a ByteBuffer write per piece repeats its capacity and
// uniqueness checks for each (a few hundred instructions per field of every message).
import Glibc

/// Copies bytes into memory whose size was checked beforehand.
struct ByteCursor {
    private let base: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init(_ base: UnsafeMutableRawBufferPointer) {
        self.base = base
    }

    /// Inlined, as `copy` is: a literal's length is then a constant, and its copy a few moves
    /// rather than a call to memcpy (a response head has about ten pieces).
    @inline(__always)
    mutating func append(_ text: StaticString) {
        copy(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Named apart from the StaticString overload, which literals would otherwise skip for
    /// String (the default literal type), building a String per literal.
    @inline(__always)
    mutating func append(contentsOf text: String) {
        withUTF8Bytes(of: text) { copy($0) }
    }

    mutating func append(decimal value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes hold any Int in decimal
        withUnsafeMutableBytes(of: &digits) { scratch in
            var rest = value.magnitude
            var start = scratch.count
            repeat {
                start -= 1
                scratch[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            if value < 0 {
                start -= 1
                scratch[start] = UInt8(ascii: "-")
            }
            copy(UnsafeRawBufferPointer(rebasing: scratch[start...]))
        }
    }

    mutating func append(byte: UInt8) {
        precondition(count < base.count, "head larger than measured")
        base[count] = byte
        count += 1
    }

    mutating func append(bytes: UnsafeRawBufferPointer) {
        copy(bytes)
    }

    @inline(__always)
    private mutating func copy(_ bytes: UnsafeRawBufferPointer) {
        precondition(count + bytes.count <= base.count, "head larger than measured")
        if let source = bytes.baseAddress, bytes.count > 0 {
            memcpy(base.baseAddress! + count, source, bytes.count)
        }
        count += bytes.count
    }
}

/// Calls `body` with the UTF-8 bytes of `text`. Native strings (small ones too) lend their
/// bytes as they are; only a bridged one is copied first, where a `withUTF8` on a copy cost
/// about 100 instructions per string.
@inline(__always)
func withUTF8Bytes<Result>(of text: String, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
    if let result = text.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return result }
    var text = text
    return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
}
