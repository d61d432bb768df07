// A PCRE2 pattern compiled once, JIT-compiled when the platform allows it. We bind PCRE2
// rather than use Swift's own Regex because user patterns are written in PCRE2 syntax (as in
// nginx and OpenResty), subjects are bytes (Lua strings), and matching must run under hard
// limits that stop a pathological pattern from stalling an event loop.
import CPCRE2

/// A compiled PCRE2 pattern (8-bit code units). It is immutable once built, so one instance
/// can be shared by every thread; the mutable state of a match lives in a ``RegexMatcher``
/// that each thread (event loop) owns.
public final class Regex: @unchecked Sendable {
    /// Compile options, so callers can express Lua-style flags and the router its anchoring.
    public struct Options: OptionSet, Sendable, Hashable {
        /// The PCRE2 compile option bits.
        public let rawValue: UInt32

        /// Wraps PCRE2 compile option bits.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// Letters match regardless of case (host names are case-insensitive).
        public static let caseless = Options(rawValue: PCRE2_CASELESS)
        /// The match must start at the start offset and end at the end of the subject, so a
        /// route pattern describes the whole path without `^...$`.
        public static let wholeSubject = Options(rawValue: PCRE2_ANCHORED | PCRE2_ENDANCHORED)
        /// `^` and `$` also match at line breaks inside the subject.
        public static let multiline = Options(rawValue: PCRE2_MULTILINE)
        /// `.` also matches line breaks.
        public static let dotAll = Options(rawValue: PCRE2_DOTALL)
        /// Whitespace and `#` comments in the pattern are ignored, for readable long patterns.
        public static let extended = Options(rawValue: PCRE2_EXTENDED)
        /// Pattern and subject are UTF-8 (so `.` is one character, not one byte); a subject
        /// with invalid UTF-8 is still searched, and invalid sequences simply never match.
        public static let utf = Options(rawValue: PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)
    }

    /// The pattern as written, for error messages and logs.
    public let pattern: String
    /// The options it was compiled with.
    public let options: Options
    /// How many capture groups the pattern has (group 0, the whole match, not counted).
    public let groupCount: Int
    /// Named groups and their numbers, in name order (PCRE2's name table); a name may
    /// repeat under `(?J)`.
    public let names: [(name: String, group: Int)]
    /// Whether matching runs JIT-compiled code; false when the platform has no JIT and the
    /// interpreter is used instead (same results, slower).
    public let isJITCompiled: Bool

    /// The compiled pattern, read-only after `init` (PCRE2 allows sharing it across threads).
    let code: OpaquePointer
    /// Whether an empty match between CR and LF must skip both (PCRE2's newline convention).
    let newlineIsCRLF: Bool
    /// Match context with the default ``RegexMatcher/Limits`` for matches run without a
    /// matcher; never modified after `init`, which PCRE2 allows to share between threads.
    /// It has no JIT stack of its own, so JIT code uses 32 KiB of the calling thread's stack.
    let sharedMatchContext: OpaquePointer

    /// Compiles `pattern`. UTF-8 by default because user patterns are text; throws a
    /// ``RegexError`` of kind `invalidPattern` with PCRE2's message and offset.
    public init(_ pattern: String, options: Options = [.utf]) throws(RegexError) {
        var errorCode: Int32 = 0
        var errorOffset = 0
        var source = pattern
        let compiled = source.withUTF8 { bytes in
            pcre2_compile_8(
                bytes.baseAddress ?? mw_pcre2_empty_string(), bytes.count, options.rawValue, &errorCode,
                &errorOffset, nil)
        }
        guard let compiled else {
            throw RegexError(compiling: pattern, code: errorCode, offset: errorOffset)
        }
        self.pattern = pattern
        self.options = options
        code = compiled
        isJITCompiled = pcre2_jit_compile_8(compiled, PCRE2_JIT_COMPLETE) == 0
        groupCount = Int(Self.info(compiled, PCRE2_INFO_CAPTURECOUNT))
        names = Self.nameTable(compiled)
        let newline = Self.info(compiled, PCRE2_INFO_NEWLINE)
        newlineIsCRLF =
            newline == PCRE2_NEWLINE_CRLF || newline == PCRE2_NEWLINE_ANY || newline == PCRE2_NEWLINE_ANYCRLF
        let limits = RegexMatcher.Limits()
        sharedMatchContext = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(sharedMatchContext, limits.matchLimit)
        pcre2_set_depth_limit_8(sharedMatchContext, limits.depthLimit)
    }

    deinit {
        pcre2_match_context_free_8(sharedMatchContext)
        pcre2_code_free_8(code)
    }

    /// The number of the first group called `name`, nil when there is none.
    public func groupNumber(named name: String) -> Int? {
        names.first { $0.name == name }?.group
    }

    private static func info(_ code: OpaquePointer, _ what: Int32) -> UInt32 {
        var value: UInt32 = 0
        pcre2_pattern_info_8(code, UInt32(what), &value)
        return value
    }

    /// Reads PCRE2's name table: entries of a 2-byte big-endian group number and a
    /// zero-terminated name, each `NAMEENTRYSIZE` bytes long.
    private static func nameTable(_ code: OpaquePointer) -> [(name: String, group: Int)] {
        let count = Int(info(code, PCRE2_INFO_NAMECOUNT))
        let entrySize = Int(info(code, PCRE2_INFO_NAMEENTRYSIZE))
        var table: UnsafePointer<UInt8>?
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMETABLE), &table)
        guard count > 0, let table else { return [] }
        return (0..<count).map { index in
            let entry = table + index * entrySize
            let name = UnsafeBufferPointer(start: entry + 2, count: entrySize - 2).prefix { $0 != 0 }
            return (String(decoding: name, as: UTF8.self), Int(entry[0]) << 8 | Int(entry[1]))
        }
    }
}
