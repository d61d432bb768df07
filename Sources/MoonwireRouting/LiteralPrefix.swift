// The literal bytes every match of an anchored route pattern starts with (`/users/` for
// `/users/(\d+)`), so the route table can skip routes whose prefix the path lacks without
// running their regexes. PCRE2 exposes no parse tree, so this reads the pattern syntax
// itself, and is deliberately conservative: on any construct it does not fully understand
// it returns an empty prefix, which puts the route in the bucket checked for every path.
// An empty prefix only costs speed; a wrong one would lose matches.

/// Extracts a route pattern's guaranteed literal prefix.
enum LiteralPrefix {
    /// The bytes every subject matched by `pattern` (compiled anchored, without `caseless`
    /// or `extended`) begins with; possibly empty, never wrong.
    static func of(_ pattern: String) -> [UInt8] {
        let bytes = Array(pattern.utf8)
        guard PatternStructure.isIndexable(bytes) else { return [] }
        var prefix: [UInt8] = []
        var index = bytes.first == UInt8(ascii: "^") ? 1 : 0
        while index < bytes.count, let atom = literalAtom(in: bytes, at: index) {
            let next = index + atom.width
            if next < bytes.count {
                switch bytes[next] {
                case UInt8(ascii: "?"), UInt8(ascii: "*"), UInt8(ascii: "{"):
                    return prefix  // the atom may be absent (or `{` may be a bound): not guaranteed
                case UInt8(ascii: "+"):
                    return prefix + atom.bytes  // at least one copy, then unknown
                default: break
                }
            }
            prefix += atom.bytes
            index = next
        }
        return prefix
    }

    /// The literal at `index` (its bytes and its width in the pattern), nil when the item
    /// there is anything but a plain literal character.
    private static func literalAtom(in bytes: [UInt8], at index: Int) -> (bytes: [UInt8], width: Int)? {
        let byte = bytes[index]
        if byte == UInt8(ascii: "\\") {
            // Escaped ASCII punctuation is that character; letters and digits are classes,
            // assertions, back references or code points: stop there.
            guard index + 1 < bytes.count, case let escaped = bytes[index + 1], escaped < 0x80,
                !PatternStructure.isAlphanumeric(escaped)
            else { return nil }
            return ([escaped], 2)
        }
        if byte >= 0x80 {
            // A whole UTF-8 character (route patterns are compiled in UTF mode).
            let width = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 0
            guard width > 0, index + width <= bytes.count else { return nil }
            return (Array(bytes[index..<index + width]), width)
        }
        return "^$.|?*+()[]{}".utf8.contains(byte) ? nil : ([byte], 1)
    }
}
