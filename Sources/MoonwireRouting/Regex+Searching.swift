// Searching with a compiled pattern: one match from an offset, or every match. These are
// what `moonwire.re.match`, `find`, `gmatch` and `gsub` need, in bytes-in, ranges-out form.
//
// Every function takes an optional `RegexMatcher`. Passing the thread's own matcher is the
// fast path (no allocation, the matcher's limits); without one, a single match allocates its
// capture vector for that call and obeys the default limits, and a multi-match call creates a
// matcher for its duration.
import CPCRE2

extension Regex {
    /// The first match at or after byte `offset` of `subject`, nil when there is none.
    /// `options` are PCRE2 match-time bits (for example `PCRE2_NOTEMPTY_ATSTART |
    /// PCRE2_ANCHORED` to retry after an empty match). Throws when a limit stopped the match
    /// (``RegexError/isResourceLimit``) or the offset lies past the end of the subject.
    public func match(
        _ subject: UnsafeRawBufferPointer, from offset: Int = 0, options: UInt32 = 0, using matcher: RegexMatcher? = nil
    ) throws(RegexError) -> RegexMatch? {
        if let matcher {
            guard try matcher.run(self, on: subject, from: offset, options: options) else { return nil }
            return matcher.currentMatch(of: self)
        }
        let matchData = pcre2_match_data_create_from_pattern_8(code, nil)!
        defer { pcre2_match_data_free_8(matchData) }
        let matched = try RegexMatcher.match(
            self, on: subject, from: offset, options: options, matchData: matchData, context: sharedMatchContext)
        return matched ? RegexMatch(matchData: matchData, of: self) : nil
    }

    /// ``match(_:from:options:using:)`` on the UTF-8 bytes of `subject`; ranges are byte offsets.
    public func match(_ subject: String, from offset: Int = 0, options: UInt32 = 0, using matcher: RegexMatcher? = nil)
        throws(RegexError) -> RegexMatch?
    {
        try withUTF8Bytes(of: subject) { bytes throws(RegexError) in
            try match(bytes, from: offset, options: options, using: matcher)
        }
    }

    /// Every non-overlapping match from byte `offset` on, in order, empty matches included
    /// (stepping as ``RegexMatchCursor`` does).
    public func allMatches(
        in subject: UnsafeRawBufferPointer, from offset: Int = 0, using matcher: RegexMatcher? = nil
    ) throws(RegexError) -> [RegexMatch] {
        let matcher = matcher ?? RegexMatcher()
        var cursor = RegexMatchCursor(from: offset)
        var found: [RegexMatch] = []
        while let next = try cursor.next(of: self, in: subject, using: matcher) { found.append(next) }
        return found
    }

    /// ``allMatches(in:from:using:)`` on the UTF-8 bytes of `subject`; ranges are byte offsets.
    public func allMatches(in subject: String, from offset: Int = 0, using matcher: RegexMatcher? = nil)
        throws(RegexError) -> [RegexMatch]
    {
        try withUTF8Bytes(of: subject) { bytes throws(RegexError) in
            try allMatches(in: bytes, from: offset, using: matcher)
        }
    }
}
