// Captures of a matched route as the Lua layer exposes them in `req.params`: the path
// pattern's groups numbered 1...n, the host pattern's groups numbered after them, and the
// named groups of both.

/// The captured text of a route match. Groups that did not take part are absent (an empty
/// capture is present as "").
public struct RouteParams: Sendable, Hashable {
    /// Captures by number: the path pattern's group k is k; the host pattern's group k is
    /// n + k, where n is the path pattern's group count.
    public var numbered = [Int: String]()
    /// Captures by name, from the path pattern and the host pattern; when both set a name,
    /// the path's value wins (it is the more specific of the two).
    public var named = [String: String]()

    /// No captures, for routes without groups and for callers building params by hand.
    public init() {}

    /// No capture at all: nothing for a reused call to clear.
    public var isEmpty: Bool { numbered.isEmpty && named.isEmpty }

    /// Adds the groups of the match `matcher` holds for `regex` on `subject`, numbering
    /// them from `firstNumber`; names already present keep their value.
    mutating func add(
        groups: (Int) -> Range<Int>?, of regex: Regex, in subject: UnsafeRawBufferPointer, numberedFrom firstNumber: Int
    ) {
        guard regex.groupCount > 0 else { return }
        func text(_ range: Range<Int>) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: subject[range]), as: UTF8.self)
        }
        for group in 1...regex.groupCount {
            if let range = groups(group) { numbered[firstNumber + group - 1] = text(range) }
        }
        for entry in regex.names where named[entry.name] == nil {
            if let range = groups(entry.group) { named[entry.name] = text(range) }
        }
    }
}
