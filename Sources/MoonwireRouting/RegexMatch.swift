// One match as plain byte ranges: the Lua layer turns them into `moonwire.re` results
// (substrings, positions) without this module knowing about Lua.
import CPCRE2

/// Where one match of a ``Regex`` lies in its subject, as byte offsets.
public struct RegexMatch: Sendable, Equatable {
    /// Group ranges by group number; index 0 is the whole match. Nil where a group did not
    /// take part in the match (an unset group is not the same as an empty one).
    public let ranges: [Range<Int>?]
    /// The pattern's name table (``Regex/names``), so captures can be looked up by name.
    public let names: [(name: String, group: Int)]

    /// Reads groups 0...`regex.groupCount` from the capture vector of `matchData` after a
    /// successful match.
    init(matchData: OpaquePointer, of regex: Regex) {
        ranges = (0...regex.groupCount).map { Self.range(ofGroup: $0, in: matchData) }
        names = regex.names
    }

    /// The bytes the whole match covers.
    public var range: Range<Int> { ranges[0]! }

    /// The range of group `number`, nil when it is unset or the pattern has no such group.
    public subscript(number: Int) -> Range<Int>? {
        ranges.indices.contains(number) ? ranges[number] : nil
    }

    /// The range of the group called `name`; with duplicate names (`(?J)`) the first that
    /// took part. Nil when no such group matched.
    public subscript(name: String) -> Range<Int>? {
        for entry in names where entry.name == name {
            if let range = self[entry.group] { return range }
        }
        return nil
    }

    /// Equal when they cover the same ranges with the same group names.
    public static func == (left: RegexMatch, right: RegexMatch) -> Bool {
        left.ranges == right.ranges && left.names.elementsEqual(right.names) { $0 == $1 }
    }

    /// Group `group` of the last successful match recorded in `matchData`.
    static func range(ofGroup group: Int, in matchData: OpaquePointer) -> Range<Int>? {
        let vector = pcre2_get_ovector_pointer_8(matchData)!
        let lower = vector[2 * group]
        let upper = vector[2 * group + 1]
        // \K in a lookbehind can report an end before the start; clamp instead of trapping.
        return lower == mw_pcre2_unset() ? nil : lower..<max(lower, upper)
    }
}
