// The server's API keys (sgcWebSockets' APIKeyManager): every event loop reads them, scripts
// add and remove them at load time or while serving, and they outlive script reloads, so they
// live in Swift behind one lock, as the shared store does. Only the SHA-256 digest of a key is
// kept: a memory dump or a log of the store shows no usable key.
import Crypto
import NIOConcurrencyHelpers

/// The SHA-256 digest of an API key, compared in constant time.
///
/// A look-up hashes the key presented and finds its digest in a dictionary. Whatever time that
/// takes depends on the digest of the presented key, never on how many leading bytes it shares
/// with a stored key: a client cannot steer a digest towards a stored one byte by byte without
/// a SHA-256 preimage, so timing teaches it nothing about the keys. The final equality is
/// constant-time too (`==` XORs all 32 bytes before it answers), so no comparison anywhere
/// stops at the first differing byte.
public struct APIKeyDigest: Hashable, Sendable {
    private let words: (UInt64, UInt64, UInt64, UInt64)

    /// The digest of `key`.
    public init(of key: some Sequence<UInt8>) {
        self.init(digest: Array(SHA256.hash(data: Array(key))))
    }

    /// A digest from its 32 bytes.
    init(digest: [UInt8]) {
        precondition(digest.count == 32, "a SHA-256 digest has 32 bytes")
        words = digest.withUnsafeBytes { raw in
            (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
             raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
    }

    /// The digest as 64 lowercase hexadecimal digits: how Redis names a key of a cluster.
    public var hexadecimal: String {
        withUnsafeBytes(of: words) { Hexadecimal.string($0) }
    }

    /// Constant time: every word is compared before the answer.
    public static func == (left: APIKeyDigest, right: APIKeyDigest) -> Bool {
        let difference = (left.words.0 ^ right.words.0) | (left.words.1 ^ right.words.1)
            | (left.words.2 ^ right.words.2) | (left.words.3 ^ right.words.3)
        return difference == 0
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

/// API keys and their info (a table of plain values: a name, scopes...), shared by every VM.
public final class APIKeyStore: Sendable {
    private let keys = NIOLockedValueBox<[APIKeyDigest: SharedValue]>([:])

    /// Creates an empty store.
    public init() {}

    /// Adds a key, or replaces its info (scripts add their keys on every load, on every loop).
    public func add(_ key: some Sequence<UInt8>, info: SharedValue) {
        let digest = APIKeyDigest(of: key)
        keys.withLockedValue { $0[digest] = info }
    }

    /// Removes a key; false when it was not there.
    @discardableResult
    public func remove(_ key: some Sequence<UInt8>) -> Bool {
        let digest = APIKeyDigest(of: key)
        return keys.withLockedValue { $0.removeValue(forKey: digest) != nil }
    }

    /// The info of a key, or nil when it is not a key (see `APIKeyDigest` for why the look-up
    /// leaks nothing about the stored keys).
    public func check(_ key: some Sequence<UInt8>) -> SharedValue? {
        let digest = APIKeyDigest(of: key)
        return keys.withLockedValue { $0[digest] }
    }
}
