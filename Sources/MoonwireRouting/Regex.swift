// A compiled PCRE2 pattern (8-bit, JIT when available) with the limits that keep a
// pathological pattern or subject from stalling an event loop.
import CPCRE2

/// A regular expression compiled once and matched many times. Not thread-safe: it owns its
/// match data, and each event loop (each Lua VM) compiles its own.
public final class Regex {
    /// Compile options.
    public struct Options: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Case-insensitive matching.
        public static let caseless = Options(rawValue: PCRE2_CASELESS)
        /// The whole subject must match (anchored at both ends).
        public static let wholeSubject = Options(rawValue: PCRE2_ANCHORED | PCRE2_ENDANCHORED)
        /// `^` and `$` match at line breaks.
        public static let multiline = Options(rawValue: PCRE2_MULTILINE)
        /// `.` matches line breaks too.
        public static let dotAll = Options(rawValue: PCRE2_DOTALL)
        /// Whitespace and `#` comments in the pattern are ignored.
        public static let extended = Options(rawValue: PCRE2_EXTENDED)
        /// UTF-8 patterns and subjects; invalid UTF-8 in a subject simply does not match.
        public static let utf = Options(rawValue: PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)
    }

    /// Backtracking steps one match may take before it gives up (regex DoS defence).
    public static let matchLimit: UInt32 = 1_000_000
    /// Nested backtracking depth one match may reach.
    public static let depthLimit: UInt32 = 10_000

    /// The pattern as written.
    public let pattern: String
    /// Number of capture groups (group 0, the whole match, not counted).
    public let groupCount: Int
    /// Named groups and their numbers.
    public let names: [(name: String, group: Int)]

    private let code: OpaquePointer
    private let matchData: OpaquePointer
    private let context: OpaquePointer
    private let jitStack: OpaquePointer?

    /// Compiles `pattern`; throws a `RegexError` with PCRE2's message and the offset.
    public init(_ pattern: String, options: Options = []) throws(RegexError) {
        self.pattern = pattern
        var errorCode: Int32 = 0
        var errorOffset = 0
        let compiled = pattern.utf8CString.withUnsafeBufferPointer { bytes in
            pcre2_compile_8(
                UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: UInt8.self), bytes.count - 1,
                options.rawValue, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            throw RegexError(pattern: pattern, message: Self.message(for: errorCode), offset: errorOffset)
        }
        code = compiled
        var usesJIT = pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE) == 0
        var count: UInt32 = 0
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_CAPTURECOUNT), &count)
        groupCount = Int(count)
        names = Self.nameTable(code)
        matchData = pcre2_match_data_create_from_pattern_8(code, nil)
        context = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(context, Self.matchLimit)
        pcre2_set_depth_limit_8(context, Self.depthLimit)
        if usesJIT, let stack = pcre2_jit_stack_create_8(32 * 1024, 512 * 1024, nil) {
            jitStack = stack
            pcre2_jit_stack_assign_8(context, nil, UnsafeMutableRawPointer(stack))
        } else {
            usesJIT = false
            jitStack = nil
        }
    }

    deinit {
        if let jitStack { pcre2_jit_stack_free_8(jitStack) }
        pcre2_match_context_free_8(context)
        pcre2_match_data_free_8(matchData)
        pcre2_code_free_8(code)
    }

    /// Matches `subject` starting at byte `offset`. Returns the byte ranges of group 0...n
    /// (nil for groups that did not take part), nil for no match; throws when a limit hit.
    public func match(_ subject: UnsafeRawBufferPointer, from offset: Int = 0, options: UInt32 = 0)
        throws(RegexError) -> RegexMatch?
    {
        let start = subject.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        let result = pcre2_match_8(code, start, subject.count, offset, options, matchData, context)
        if result == PCRE2_ERROR_NOMATCH || result == PCRE2_ERROR_PARTIAL { return nil }
        guard result > 0 else {
            throw RegexError(pattern: pattern, message: Self.message(for: result), offset: offset)
        }
        let vector = pcre2_get_ovector_pointer_8(matchData)!
        var ranges: [Range<Int>?] = []
        ranges.reserveCapacity(groupCount + 1)
        for group in 0...groupCount {
            let lower = vector[2 * group], upper = vector[2 * group + 1]
            ranges.append(group < result && lower != mw_pcre2_unset() ? lower..<upper : nil)
        }
        return RegexMatch(ranges: ranges)
    }

    /// Matches a Swift string (its UTF-8 bytes).
    public func match(_ subject: String) throws(RegexError) -> RegexMatch? {
        var subject = subject
        var outcome: Result<RegexMatch?, RegexError> = .success(nil)
        subject.withUTF8 { bytes in
            do throws(RegexError) {
                outcome = .success(try match(UnsafeRawBufferPointer(bytes)))
            } catch {
                outcome = .failure(error)
            }
        }
        return try outcome.get()
    }

    private static func message(for code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = pcre2_get_error_message_8(code, &buffer, buffer.count)
        return length > 0 ? String(decoding: buffer[..<Int(length)], as: UTF8.self) : "PCRE2 error \(code)"
    }

    private static func nameTable(_ code: OpaquePointer) -> [(name: String, group: Int)] {
        var count: UInt32 = 0, entrySize: UInt32 = 0
        var table: UnsafePointer<UInt8>?
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMECOUNT), &count)
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMEENTRYSIZE), &entrySize)
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMETABLE), &table)
        guard count > 0, let table else { return [] }
        return (0..<Int(count)).map { index in
            let entry = table + index * Int(entrySize)
            let group = Int(entry[0]) << 8 | Int(entry[1])
            let nameBytes = UnsafeBufferPointer(start: entry + 2, count: Int(entrySize) - 2).prefix { $0 != 0 }
            return (String(decoding: nameBytes, as: UTF8.self), group)
        }
    }
}

/// The byte ranges one match covered: index 0 is the whole match.
public struct RegexMatch: Sendable, Equatable {
    /// Group ranges in the subject; nil where a group did not take part.
    public var ranges: [Range<Int>?]
}

/// A pattern that does not compile, or a match that hit a limit.
public struct RegexError: Error, CustomStringConvertible, Sendable {
    /// The pattern concerned.
    public var pattern: String
    /// PCRE2's message.
    public var message: String
    /// Where in the pattern (compile errors) or the subject (match errors).
    public var offset: Int

    public var description: String { "invalid pattern \"\(pattern)\": \(message) at offset \(offset)" }
}
