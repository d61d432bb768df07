// Comparison of secrets (HMACs, API keys, tokens) whose running time does not depend on where
// the inputs first differ, so a client timing its guesses learns nothing about the matching
// prefix. swift-crypto compares its own MACs this way but exposes no function for arbitrary
// bytes, so this small loop is ours; it is a comparison, not a cryptographic primitive.

/// Byte comparisons whose time depends only on the lengths of the inputs.
public enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes. Inputs of different lengths are unequal at
    /// once (their lengths are not secret); otherwise every byte of both is read, whatever
    /// they hold, and the differences are folded together without a branch on the data.
    @inlinable
    public static func equals<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
