// Walking every match of a pattern through a subject, for `moonwire.re.gmatch` and `gsub`.
// The empty-match rule is PCRE2's own (pcre2demo.c): after an empty match, retry at the same
// place insisting on a non-empty match, and only then step one character (CRLF or a whole
// UTF-8 sequence) forward, so `x*` over "ab" yields three empty matches, never a loop.
import CPCRE2

/// A position in a subject from which the next match of a ``Regex`` is searched. A plain
/// value (an offset and two flags), so a Lua iterator can keep it between calls.
public struct RegexMatchCursor: Sendable, Hashable {
    /// Byte offset where the next search starts.
    public private(set) var offset: Int
    private var previousMatchWasEmpty = false
    private var isExhausted = false

    /// A cursor that starts searching at byte `offset`.
    public init(from offset: Int = 0) {
        self.offset = offset
    }

    /// The next match at or after ``offset``, nil once there are no more. Pass the same
    /// pattern and subject on every call.
    public mutating func next(of regex: Regex, in subject: UnsafeRawBufferPointer, using matcher: RegexMatcher)
        throws(RegexError) -> RegexMatch?
    {
        while !isExhausted {
            var options: UInt32 = 0
            if previousMatchWasEmpty {
                if offset >= subject.count {
                    isExhausted = true
                    return nil
                }
                options = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED
            }
            if try matcher.run(regex, on: subject, from: offset, options: options) {
                let found = matcher.currentMatch(of: regex)
                // \K in a lookbehind may put a match before the cursor; never move backwards.
                offset = max(offset, found.range.upperBound)
                previousMatchWasEmpty = found.range.isEmpty
                return found
            }
            guard previousMatchWasEmpty else {
                isExhausted = true
                return nil
            }
            previousMatchWasEmpty = false
            offset = Self.characterEnd(after: offset, in: subject, regex: regex)
        }
        return nil
    }

    /// The offset one character past `offset`: CRLF counts as one when it is a newline, and
    /// in UTF mode continuation bytes belong to the character before them.
    private static func characterEnd(after offset: Int, in subject: UnsafeRawBufferPointer, regex: Regex) -> Int {
        var end = offset + 1
        if regex.newlineIsCRLF, end < subject.count, subject[offset] == 0x0D, subject[end] == 0x0A {
            return end + 1
        }
        if regex.options.contains(.utf) {
            while end < subject.count, subject[end] & 0xC0 == 0x80 { end += 1 }
        }
        return end
    }
}
