// The literal text every match of a pattern must start with, so a route table can skip the
// routes whose prefix the path does not have without running their regexes.

/// Extracts a pattern's guaranteed literal prefix (possibly empty, never wrong).
enum LiteralPrefix {
    /// The bytes any subject matched by `pattern` (anchored at its start) begins with.
    /// Conservative: whenever the syntax allows a doubt, the prefix stops there.
    static func of(_ pattern: String) -> [UInt8] {
        let bytes = Array(pattern.utf8)
        if hasTopLevelAlternation(bytes) { return [] }
        var prefix: [UInt8] = []
        var index = 0
        if bytes.first == UInt8(ascii: "^") { index = 1 }
        while index < bytes.count {
            let byte = bytes[index]
            var literal: UInt8?
            var width = 1
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { break }
                let escaped = bytes[index + 1]
                // Only escaped punctuation is a plain literal; \d, \w, \Q, \x... are not.
                guard !isAlphanumeric(escaped), escaped < 0x80 else { break }
                literal = escaped
                width = 2
            } else if "^$.|?*+()[]{}#".utf8.contains(byte) || byte >= 0x80 || byte == 0x20 {
                break
            } else {
                literal = byte
            }
            let next = index + width
            if next < bytes.count, "?*{".utf8.contains(bytes[next]) { break }  // optional: not guaranteed
            if next < bytes.count, bytes[next] == UInt8(ascii: "+") {
                if let literal { prefix.append(literal) }  // at least one
                break
            }
            if let literal { prefix.append(literal) }
            index = next
        }
        return prefix
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// Whether a `|` separates alternatives of the whole pattern (outside groups and classes).
    private static func hasTopLevelAlternation(_ bytes: [UInt8]) -> Bool {
        var depth = 0
        var inClass = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if inClass {
                if byte == UInt8(ascii: "]") { inClass = false }
            } else {
                switch byte {
                case UInt8(ascii: "["):
                    inClass = true
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "]") { index += 1 }
                case UInt8(ascii: "("): depth += 1
                case UInt8(ascii: ")"): depth -= 1
                case UInt8(ascii: "|") where depth == 0: return true
                default: break
                }
            }
            index += 1
        }
        return false
    }
}
