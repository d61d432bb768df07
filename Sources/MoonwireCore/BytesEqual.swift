// Comparing bytes of a message against a literal (field names, framing values, the proxy's
// hop-by-hop names), a word at a time.

/// Whether `bytes[range]` is `literal`; with `ignoringCase`, in any letter case (`literal` is
/// then lowercase). Compared a word at a time rather than byte by byte (this runs for field
/// names of every message): eight bytes, the last word overlapping the one before, or two
/// overlapping halves of four or two bytes when shorter. Inlined, so that the literal's words
/// and where its letters are become constants.
@inline(__always)
func bytesEqual(
    _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString, ignoringCase: Bool = false
) -> Bool {
    let count = literal.utf8CodeUnitCount
    guard range.count == count else { return false }
    guard count > 0 else { return true }
    let start = bytes.baseAddress! + range.lowerBound
    let text = UnsafeRawPointer(literal.utf8Start)
    // A byte in any case is the literal's lowercase letter once 0x20 is OR-ed into it; other
    // bytes must be the literal's.
    func matches(_ word: UInt64, _ expected: UInt64) -> Bool {
        (ignoringCase ? word | ASCIIWord.lowercaseLetters(expected) >> 2 : word) == expected
    }
    func halves<Half: FixedWidthInteger>(_ half: Half.Type, _ pointer: UnsafeRawPointer) -> UInt64 {
        let width = Half.bitWidth / 8
        let last = pointer.loadUnaligned(fromByteOffset: count - width, as: Half.self)
        return UInt64(pointer.loadUnaligned(as: Half.self)) | UInt64(last) << 32
    }
    switch count {
    case 1: return matches(UInt64(start.load(as: UInt8.self)), UInt64(text.load(as: UInt8.self)))
    case 2...3: return matches(halves(UInt16.self, start), halves(UInt16.self, text))
    case 4...7: return matches(halves(UInt32.self, start), halves(UInt32.self, text))
    default:
        var offset = 0
        while true {
            let word = min(offset, count - 8)
            let expected = text.loadUnaligned(fromByteOffset: word, as: UInt64.self)
            guard matches(start.loadUnaligned(fromByteOffset: word, as: UInt64.self), expected) else { return false }
            offset = word + 8
            if offset == count { return true }
        }
    }
}
