// An incremental UTF-8 validator (RFC 3629), so a text message split over fragments can be
// checked as it arrives and a bad one failed at once (Autobahn's "fail fast" cases).
// Swift's String(validating:) needs the whole message and cannot say "so far so good".

/// Validates UTF-8 fed in pieces.
struct UTF8Validator {
    /// Bytes still expected in the current sequence.
    private var pending = 0
    /// Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// Feeds bytes; false as soon as they cannot be UTF-8. Runs of ASCII are checked eight
    /// bytes at a time: most text is ASCII, and a 16 MiB message must not cost a byte loop.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            if pending == 0 {
                while index + 8 <= count,
                    ASCIIWord.isASCII(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                {
                    index += 8
                }
                guard index < count else { break }
            }
            let byte = bytes[index]
            index += 1
            if pending == 0 {
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: pending = 1
                case 0xE0: pending = 2; lower = 0xA0
                case 0xE1...0xEC, 0xEE, 0xEF: pending = 2
                case 0xED: pending = 2; upper = 0x9F
                case 0xF0: pending = 3; lower = 0x90
                case 0xF1...0xF3: pending = 3
                case 0xF4: pending = 3; upper = 0x8F
                default: return false
                }
            } else {
                guard byte >= lower && byte <= upper else { return false }
                lower = 0x80
                upper = 0xBF
                pending -= 1
            }
        }
        return true
    }

    /// Whether the bytes so far end on a character boundary.
    var isComplete: Bool { pending == 0 }
}
