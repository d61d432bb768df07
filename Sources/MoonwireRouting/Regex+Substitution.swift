// Replacing matches with PCRE2's own substitution engine (`pcre2_substitute`), so `$1`,
// `${name}` and the extended forms (`\U$1`, `${1:+yes:no}`) behave exactly as PCRE2 documents.
// Callers that need Lua's replacement rules (`%1`, a table, a function) splice instead, using
// the ranges from ``RegexMatchCursor``.
import CPCRE2

/// The result of ``Regex/replacingMatches(in:with:from:global:using:)``.
public struct RegexSubstitution: Sendable, Hashable {
    /// The subject with the replacements made (bytes, as subjects may be binary).
    public let bytes: [UInt8]
    /// How many matches were replaced; 0 means `bytes` equals the subject.
    public let count: Int
}

extension Regex {
    /// Replaces the first match at or after byte `offset` (or every match, when `global`)
    /// with `replacement` in PCRE2's extended syntax. Unset groups insert nothing. Throws
    /// `invalidReplacement` with an offset into `replacement`, or a match error.
    public func replacingMatches(
        in subject: UnsafeRawBufferPointer, with replacement: UnsafeRawBufferPointer, from offset: Int = 0,
        global: Bool = true, using matcher: RegexMatcher? = nil
    ) throws(RegexError) -> RegexSubstitution {
        let matcher = matcher ?? RegexMatcher()
        var options = PCRE2_SUBSTITUTE_EXTENDED | PCRE2_SUBSTITUTE_UNSET_EMPTY | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH
        if global { options |= PCRE2_SUBSTITUTE_GLOBAL }
        // A first guess that fits most substitutions; PCRE2 reports the exact need otherwise.
        var capacity = subject.count + replacement.count + 64
        while true {
            var length = capacity
            var result: Int32 = 0
            let output = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                result = matcher.substitute(
                    self, in: subject, from: offset, options: options, replacement: replacement, into: buffer,
                    length: &length)
                initialized = result >= 0 ? length : 0
            }
            if result >= 0 { return RegexSubstitution(bytes: output, count: Int(result)) }
            if result == PCRE2_ERROR_NOMEMORY, length > capacity - 1 {
                capacity = length + 1
                continue
            }
            throw Self.substitutionError(pattern: pattern, code: result, reported: length, offset: offset)
        }
    }

    /// ``replacingMatches(in:with:from:global:using:)`` over the UTF-8 bytes of strings.
    public func replacingMatches(
        in subject: String, with replacement: String, from offset: Int = 0, global: Bool = true,
        using matcher: RegexMatcher? = nil
    ) throws(RegexError) -> RegexSubstitution {
        try withUTF8Bytes(of: subject) { subjectBytes throws(RegexError) in
            try withUTF8Bytes(of: replacement) { replacementBytes throws(RegexError) in
                try replacingMatches(
                    in: subjectBytes, with: replacementBytes, from: offset, global: global, using: matcher)
            }
        }
    }

    /// Tells replacement-text errors (PCRE2 reports their offset in the replacement through
    /// the length argument) from match errors.
    private static func substitutionError(pattern: String, code: Int32, reported: Int, offset: Int) -> RegexError {
        let replacementErrors = [
            PCRE2_ERROR_BADREPLACEMENT, PCRE2_ERROR_BADREPESCAPE, PCRE2_ERROR_REPMISSINGBRACE,
            PCRE2_ERROR_BADSUBSTITUTION, PCRE2_ERROR_BADSUBSPATTERN, PCRE2_ERROR_NOSUBSTRING, PCRE2_ERROR_UNSET,
        ]
        let isUTFError = (PCRE2_ERROR_UTF8_ERR21...PCRE2_ERROR_UTF8_ERR1).contains(code)
        guard replacementErrors.contains(code) || isUTFError else {
            return RegexError(matching: pattern, code: code, offset: offset)
        }
        let replacementOffset = reported == mw_pcre2_unset() ? 0 : reported
        return RegexError(kind: .invalidReplacement, pattern: pattern, code: code, offset: replacementOffset)
    }
}
