// The per-thread half of matching: PCRE2 match data (the capture vector), a match context
// carrying the regex-DoS limits, and a bounded JIT stack. Keeping these out of `Regex` lets a
// compiled pattern be shared while each event loop matches without locks or allocations.
import CPCRE2

/// Scratch state for running any ``Regex``: one per thread or event loop, reused for every
/// match. Not `Sendable`: it holds the last match's capture vector.
public final class RegexMatcher {
    /// Bounds on one match, so a catastrophic pattern (`(a+)+$`) or a hostile subject costs
    /// milliseconds, not the event loop.
    public struct Limits: Sendable, Hashable {
        /// Backtracking steps one match may take (PCRE2's match limit; its own default is
        /// 10 million, far too many for a request path). Applies to JIT and interpreter.
        public var matchLimit: UInt32
        /// Nested backtracking depth of the interpreter (ignored by JIT code, which is bounded
        /// by ``jitStackSize`` instead).
        public var depthLimit: UInt32
        /// Largest stack JIT code may grow, in bytes.
        public var jitStackSize: Int

        /// Limits with defaults that let every sane route and `moonwire.re` call through:
        /// 100,000 steps, depth 10,000, 512 KiB of JIT stack.
        public init(matchLimit: UInt32 = 100_000, depthLimit: UInt32 = 10_000, jitStackSize: Int = 512 * 1024) {
            self.matchLimit = matchLimit
            self.depthLimit = depthLimit
            self.jitStackSize = jitStackSize
        }
    }

    /// The limits every match run by this matcher obeys.
    public let limits: Limits

    private var matchData: OpaquePointer
    private var pairCapacity: Int
    private let context: OpaquePointer
    private let jitStack: OpaquePointer?

    /// Creates the scratch state; costs a few allocations, so make one per thread, not per match.
    public init(limits: Limits = Limits()) {
        self.limits = limits
        pairCapacity = 16
        matchData = pcre2_match_data_create_8(UInt32(pairCapacity), nil)
        context = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(context, limits.matchLimit)
        pcre2_set_depth_limit_8(context, limits.depthLimit)
        jitStack = pcre2_jit_stack_create_8(min(32 * 1024, limits.jitStackSize), limits.jitStackSize, nil)
        if let jitStack {
            pcre2_jit_stack_assign_8(context, nil, UnsafeMutableRawPointer(jitStack))
        }
    }

    deinit {
        if let jitStack { pcre2_jit_stack_free_8(jitStack) }
        pcre2_match_context_free_8(context)
        pcre2_match_data_free_8(matchData)
    }

    /// Runs `regex` on `subject` from byte `offset`. True on a match, whose groups are then
    /// readable through ``range(ofGroup:)`` until the next call; false on no match.
    func run(_ regex: Regex, on subject: UnsafeRawBufferPointer, from offset: Int, options: UInt32 = 0)
        throws(RegexError) -> Bool
    {
        reserve(regex.groupCount + 1)
        return try Self.match(regex, on: subject, from: offset, options: options, matchData: matchData, context: context)
    }

    /// The byte range of group `group` in the last successful match; nil when the group did
    /// not take part in it.
    func range(ofGroup group: Int) -> Range<Int>? {
        RegexMatch.range(ofGroup: group, in: matchData)
    }

    /// The last successful match as a value that outlives the next call.
    func currentMatch(of regex: Regex) -> RegexMatch {
        RegexMatch(matchData: matchData, of: regex)
    }

    /// `pcre2_match` with PCRE2's result codes turned into Bool or a thrown ``RegexError``.
    static func match(
        _ regex: Regex, on subject: UnsafeRawBufferPointer, from offset: Int, options: UInt32, matchData: OpaquePointer,
        context: OpaquePointer
    ) throws(RegexError) -> Bool {
        let result = pcre2_match_8(regex.code, start(of: subject), subject.count, offset, options, matchData, context)
        if result > 0 { return true }
        if result == PCRE2_ERROR_NOMATCH { return false }
        throw RegexError(matching: regex.pattern, code: result, offset: offset)
    }

    /// Runs `pcre2_substitute` with this matcher's match data and limits.
    func substitute(
        _ regex: Regex, in subject: UnsafeRawBufferPointer, from offset: Int, options: UInt32,
        replacement: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt8>, length: inout Int
    ) -> Int32 {
        reserve(regex.groupCount + 1)
        return pcre2_substitute_8(
            regex.code, Self.start(of: subject), subject.count, offset, options, matchData, context,
            Self.start(of: replacement), replacement.count, output.baseAddress, &length)
    }

    /// Grows the capture vector when a pattern has more groups than any seen before (PCRE2
    /// would otherwise silently drop the extra groups).
    private func reserve(_ pairs: Int) {
        guard pairs > pairCapacity else { return }
        pcre2_match_data_free_8(matchData)
        pairCapacity = max(pairs, 2 * pairCapacity)
        matchData = pcre2_match_data_create_8(UInt32(pairCapacity), nil)
    }

    private static func start(of bytes: UnsafeRawBufferPointer) -> UnsafePointer<UInt8> {
        bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? mw_pcre2_empty_string()
    }
}
