// A coarse reading of a PCRE2 pattern's structure: enough to know whether its leading
// literals bind the whole pattern. They do not when the top level has alternatives (`/a|/b`),
// and we cannot tell when syntax could hide a `|` or make an earlier item optional (quoting
// with \Q...\E, comments, extended mode, verbs). Such patterns are reported as not indexable.

/// Decides whether ``LiteralPrefix`` may trust a pattern's leading literals.
enum PatternStructure {
    /// True when the pattern has no top-level alternation and nothing this scanner could
    /// misread. Assumes the pattern compiled, so brackets and parentheses balance.
    static func isIndexable(_ bytes: [UInt8]) -> Bool {
        var depth = 0
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"):
                guard let width = escapeWidth(bytes, at: index) else { return false }
                index += width
                continue
            case UInt8(ascii: "["):
                guard let end = classEnd(bytes, from: index) else { return false }
                index = end
            case UInt8(ascii: "("):
                guard isPlainGroupOpening(bytes, at: index) else { return false }
                depth += 1
            case UInt8(ascii: ")"):
                depth -= 1
            case UInt8(ascii: "|") where depth == 0:
                return false
            default:
                break
            }
            index += 1
        }
        return true
    }

    /// Whether `byte` is an ASCII letter or digit (an escape of one is never a literal).
    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// Bytes taken by the escape at `index`; nil for `\Q` and `\E`, whose quoting (and an
    /// empty `\Q\E` before a quantifier) changes what the surrounding items mean.
    private static func escapeWidth(_ bytes: [UInt8], at index: Int) -> Int? {
        guard index + 1 < bytes.count else { return nil }
        switch bytes[index + 1] {
        case UInt8(ascii: "Q"), UInt8(ascii: "E"): return nil
        case UInt8(ascii: "c"): return 3  // \cX: X may be any ASCII character, even ( or [
        default: return 2
        }
    }

    /// The index of the `]` closing the class opened at `start`; nil for POSIX classes and
    /// anything else this scanner does not follow.
    private static func classEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start + 1
        if index < bytes.count, bytes[index] == UInt8(ascii: "^") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1 }  // a leading ] is literal
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "]"):
                return index
            case UInt8(ascii: "\\"):
                guard let width = escapeWidth(bytes, at: index) else { return nil }
                index += width
                continue
            case UInt8(ascii: "["):
                // [:alpha:] and the [. .] / [= =] forms have their own closing rules.
                if index + 1 < bytes.count, ":.=".utf8.contains(bytes[index + 1]) { return nil }
            default:
                break
            }
            index += 1
        }
        return nil
    }

    /// Whether the `(` at `index` opens a group whose syntax this scanner follows: plain
    /// capturing, `(?:`, `(?|`, `(?>`, lookarounds, named groups, conditionals, and option
    /// settings without `x` (extended mode changes how the rest of the pattern parses).
    /// Verbs `(*...)`, comments `(?#...)`, callouts and recursion calls are refused.
    private static func isPlainGroupOpening(_ bytes: [UInt8], at index: Int) -> Bool {
        guard index + 1 < bytes.count else { return false }
        switch bytes[index + 1] {
        case UInt8(ascii: "*"): return false
        case UInt8(ascii: "?"): break
        default: return true
        }
        guard index + 2 < bytes.count else { return false }
        let kind = bytes[index + 2]
        if ":|>=!<P'(".utf8.contains(kind) { return true }
        // Option letters up to `)` or `:`; only these leave the syntax unchanged.
        var cursor = index + 2
        while cursor < bytes.count, "imnsJU^-".utf8.contains(bytes[cursor]) { cursor += 1 }
        return cursor > index + 2 && cursor < bytes.count && ":)".utf8.contains(bytes[cursor])
    }
}
