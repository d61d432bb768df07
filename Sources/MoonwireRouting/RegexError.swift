// The one error type of the routing module: a pattern that does not compile, a replacement
// that does not parse, or a match that gave up on a limit. An opaque struct over a private
// enum (as SwiftNIO does) so kinds can be added without breaking callers.
import CPCRE2

/// Why a pattern could not be compiled or a match could not finish, with PCRE2's own message
/// so the Lua layer can show it next to the script's file and line.
public struct RegexError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, coarsely: callers branch on this, users read ``message``.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case invalidPattern, invalidReplacement, matchLimit, depthLimit, heapLimit, jitStackLimit, matchFailed
        }

        private let base: Base

        /// The pattern does not compile; ``RegexError/offset`` is where in the pattern.
        public static let invalidPattern = Kind(base: .invalidPattern)
        /// A substitution's replacement text does not parse or names a missing group;
        /// ``RegexError/offset`` is where in the replacement.
        public static let invalidReplacement = Kind(base: .invalidReplacement)
        /// The match took more backtracking steps than ``RegexMatcher/Limits/matchLimit``.
        public static let matchLimit = Kind(base: .matchLimit)
        /// The interpreter nested deeper than ``RegexMatcher/Limits/depthLimit``.
        public static let depthLimit = Kind(base: .depthLimit)
        /// The interpreter needed more backtracking memory than PCRE2's heap limit.
        public static let heapLimit = Kind(base: .heapLimit)
        /// JIT code ran out of its bounded stack (``RegexMatcher/Limits/jitStackSize``).
        public static let jitStackLimit = Kind(base: .jitStackLimit)
        /// Any other failure PCRE2 reports while matching (for example a start offset past
        /// the end of the subject).
        public static let matchFailed = Kind(base: .matchFailed)

        /// A short name for logs.
        public var description: String {
            switch base {
            case .invalidPattern: "invalid pattern"
            case .invalidReplacement: "invalid replacement"
            case .matchLimit: "match limit"
            case .depthLimit: "depth limit"
            case .heapLimit: "heap limit"
            case .jitStackLimit: "JIT stack limit"
            case .matchFailed: "match failed"
            }
        }

        /// Whether this kind means "gave up to protect the server", not "bad input".
        var isResourceLimit: Bool {
            switch base {
            case .matchLimit, .depthLimit, .heapLimit, .jitStackLimit: true
            case .invalidPattern, .invalidReplacement, .matchFailed: false
            }
        }
    }

    /// What went wrong.
    public let kind: Kind
    /// The pattern concerned, as written.
    public let pattern: String
    /// PCRE2's explanation, e.g. "missing closing parenthesis".
    public let message: String
    /// Byte offset of the problem: in the pattern for `invalidPattern`, in the replacement
    /// for `invalidReplacement`, otherwise the subject offset the match started from.
    public let offset: Int

    /// True when a match was stopped by a resource limit (a regex DoS defence fired), so
    /// callers can log it as an attack or a pattern to fix rather than as a bug.
    public var isResourceLimit: Bool { kind.isResourceLimit }

    /// One line for logs and Lua error messages.
    public var description: String {
        switch kind {
        case .invalidPattern: "invalid pattern \"\(pattern)\": \(message) at offset \(offset)"
        case .invalidReplacement: "invalid replacement for pattern \"\(pattern)\": \(message) at offset \(offset)"
        default: "pattern \"\(pattern)\" gave up at subject offset \(offset): \(message)"
        }
    }

    init(compiling pattern: String, code: Int32, offset: Int) {
        self.init(kind: .invalidPattern, pattern: pattern, code: code, offset: offset)
    }

    init(matching pattern: String, code: Int32, offset: Int) {
        let kind: Kind =
            switch code {
            case PCRE2_ERROR_MATCHLIMIT: .matchLimit
            case PCRE2_ERROR_DEPTHLIMIT: .depthLimit
            case PCRE2_ERROR_HEAPLIMIT: .heapLimit
            case PCRE2_ERROR_JIT_STACKLIMIT: .jitStackLimit
            default: .matchFailed
            }
        self.init(kind: kind, pattern: pattern, code: code, offset: offset)
    }

    init(kind: Kind, pattern: String, code: Int32, offset: Int) {
        self.kind = kind
        self.pattern = pattern
        self.message = Self.message(for: code)
        self.offset = offset
    }

    private static func message(for code: Int32) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer in
            let length = pcre2_get_error_message_8(code, buffer.baseAddress, buffer.count)
            return length > 0 ? String(decoding: buffer[..<Int(length)], as: UTF8.self) : "PCRE2 error \(code)"
        }
    }
}
