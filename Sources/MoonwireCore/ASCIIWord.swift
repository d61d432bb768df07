// Eight bytes of text tested at once, as one 64-bit word: head fields and UTF-8 runs are mostly
// ASCII, and a loop per byte is most of what checking them costs. The tests are the "byte below
// n" and "zero byte" ones from Bit Twiddling Hacks.

/// Tests on eight bytes loaded as one word (any byte order: each byte is tested alone).
public enum ASCIIWord {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Whether every byte is below 0x80.
    @inlinable
    public static func isASCII(_ word: UInt64) -> Bool {
        word & 0x8080_8080_8080_8080 == 0
    }

    /// Whether one of the bytes is below 0x20 or is 0x7F (bytes from 0x80 do not count).
    public static func hasControlByte(_ word: UInt64) -> Bool {
        let below20 = (word &- ones &* 0x20) & ~word & highs
        let delete = word ^ (ones &* 0x7F)
        let is7F = (delete &- ones) & ~delete & highs
        return below20 | is7F != 0
    }

    /// The high bit of each byte from "a" to "z", for words of ASCII bytes (a byte from 0x80
    /// would carry into the next lane). A byte is at least n when adding 0x80 - n sets its high bit.
    public static func lowercaseLetters(_ word: UInt64) -> UInt64 {
        (word &+ (ones &* (0x80 - 0x61))) & ~(word &+ (ones &* (0x80 - 0x7B))) & highs
    }
}
