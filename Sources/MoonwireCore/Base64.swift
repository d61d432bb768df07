// Base64 (RFC 4648 section 4) and its URL-safe alphabet (section 5), over Foundation's codec:
// moonwire.base64, the parts of a JWT and an h2c upgrade's HTTP2-Settings use it. Foundation knows only the standard alphabet
// with padding, so the URL-safe form is translated to it and back here.
import Foundation

/// Base64 in both RFC 4648 alphabets.
public enum Base64 {
    /// Encodes `bytes`; `urlSafe` uses `-` and `_` and leaves the padding out, as JWTs and
    /// URLs want it.
    public static func encode(_ bytes: some Collection<UInt8>, urlSafe: Bool) -> String {
        let standard = Data(bytes).base64EncodedString()
        guard urlSafe else { return standard }
        var out = ""
        out.reserveCapacity(standard.utf8.count)
        for character in standard.unicodeScalars where character != "=" {
            out.unicodeScalars.append(character == "+" ? "-" : character == "/" ? "_" : character)
        }
        return out
    }

    /// Decodes `text`, or nil when it is not base64 of that alphabet: a byte outside it
    /// (whitespace included), a bad length, or misplaced padding. The URL-safe form may leave
    /// its padding out; the standard one must have it.
    public static func decode(_ text: some Collection<UInt8>, urlSafe: Bool) -> [UInt8]? {
        var standard = Array(text)
        if urlSafe {
            for (index, byte) in standard.enumerated() {
                switch byte {
                case UInt8(ascii: "+"), UInt8(ascii: "/"): return nil
                case UInt8(ascii: "-"): standard[index] = UInt8(ascii: "+")
                case UInt8(ascii: "_"): standard[index] = UInt8(ascii: "/")
                default: break
                }
            }
            if !standard.contains(UInt8(ascii: "=")) {
                guard standard.count % 4 != 1 else { return nil }
                standard += Array(repeating: UInt8(ascii: "="), count: (4 - standard.count % 4) % 4)
            }
        }
        // Foundation lets padding through in the middle of a quantum ("Zg=a"); RFC 4648 does not.
        if let padding = standard.firstIndex(of: UInt8(ascii: "=")) {
            guard standard.count - padding <= 2, standard[padding...].allSatisfy({ $0 == UInt8(ascii: "=") }) else { return nil }
        }
        return Data(base64Encoded: Data(standard)).map { Array($0) }
    }
}
