// moonwire.crypto: digests, HMACs, random bytes and constant-time comparison, on swift-crypto
// and the system's CSPRNG; nothing here implements a primitive. Digests and HMACs are raw
// bytes, as OpenResty's ngx.sha1_bin and ngx.hmac_sha1 are: scripts compare them with
// crypto.equals, feed them to base64 or another HMAC, and print them with crypto.hex.
import CLua
import Crypto
import MoonwireCore

extension LuaAPI {
    /// moonwire.crypto: pure functions, anywhere.
    static let cryptoFunctions = [
        "moonwire.crypto.sha256", "moonwire.crypto.sha1", "moonwire.crypto.hmac", "moonwire.crypto.random",
        "moonwire.crypto.equals", "moonwire.crypto.hex",
    ].map { LuaAPIFunction($0, .anywhere) }
}

extension LuaVM {
    func installCrypto() {
        lua_createtable(L, 0, 6)
        L.setFunction("sha256", luaSHA256)
        L.setFunction("sha1", luaSHA1)
        L.setFunction("hmac", luaHMAC)
        L.setFunction("random", luaRandom)
        L.setFunction("equals", luaEquals)
        L.setFunction("hex", luaHex)
    }
}

/// The most bytes one moonwire.crypto.random call returns.
let maximumRandomBytes = 65536

extension LuaThread {
    /// Whether the arguments at `indices` are all strings; otherwise pushes the error naming
    /// the first that is not. Numbers are refused, so `sha256(1)` is a mistake, not `sha256("1")`.
    func checkStrings(_ indices: Int32..., of function: String) -> Bool {
        for index in indices where type(at: index) != LUA_TSTRING {
            push("\(function): expected a string as argument \(index), got \(describe(at: index))")
            return false
        }
        return true
    }

    /// Calls `body` with the bytes of the strings at `first` and `second` (checked before).
    func withBytes<T>(at first: Int32, and second: Int32, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> T) -> T {
        withBytes(at: first) { a in withBytes(at: second) { b in body(a, b) }! }!
    }
}

/// `moonwire.crypto.sha256(s)` → the 32-byte digest.
private let luaSHA256: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.crypto.sha256") else { return LuaReturn.raise }
    L.push(bytes: L.withBytes(at: 1) { Array(SHA256.hash(data: $0)) }!)
    return 1
}

/// `moonwire.crypto.sha1(s)` → the 20-byte digest (for protocols that still need SHA-1).
private let luaSHA1: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.crypto.sha1") else { return LuaReturn.raise }
    L.push(bytes: L.withBytes(at: 1) { Array(Insecure.SHA1.hash(data: $0)) }!)
    return 1
}

/// HMAC of `message` under `key` with the named hash, or nil for an unknown name.
private func hmac(_ algorithm: String, key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> [UInt8]? {
    let key = SymmetricKey(data: key)
    switch algorithm {
    case "sha256": return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    case "sha1": return Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key))
    case "sha384": return Array(HMAC<SHA384>.authenticationCode(for: message, using: key))
    case "sha512": return Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
    default: return nil
    }
}

/// `moonwire.crypto.hmac(alg, key, msg)` → the raw HMAC; alg is "sha256", "sha1", "sha384" or "sha512".
private let luaHMAC: LuaFunction = { L in
    let L = L!
    let name = "moonwire.crypto.hmac"
    guard L.checkStrings(1, 2, 3, of: name) else { return LuaReturn.raise }
    let algorithm = L.string(at: 1)!
    guard let code = L.withBytes(at: 2, and: 3, { hmac(algorithm, key: $0, message: $1) }) else {
        return L.raise("\(name): unknown algorithm \(L.describe(at: 1)) (use sha256, sha1, sha384 or sha512)")
    }
    L.push(bytes: code)
    return 1
}

/// `moonwire.crypto.random(n)` → n bytes from the system's CSPRNG (getrandom on Linux).
private let luaRandom: LuaFunction = { L in
    let L = L!
    guard mw_isinteger(L, 1) != 0, case let count = Int(mw_tointeger(L, 1, nil)), (0...maximumRandomBytes).contains(count) else {
        return L.raise("moonwire.crypto.random: expected a whole number of bytes from 0 to \(maximumRandomBytes), got \(L.describe(at: 1))")
    }
    L.push(bytes: randomBytes(count))
    return 1
}

/// `count` bytes from SystemRandomNumberGenerator, which the standard library documents as
/// cryptographically secure on every platform.
func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}

/// `moonwire.crypto.equals(a, b)` → whether two strings are equal, in a time that depends on
/// their lengths only (see ConstantTime).
private let luaEquals: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, 2, of: "moonwire.crypto.equals") else { return LuaReturn.raise }
    lua_pushboolean(L, L.withBytes(at: 1, and: 2) { ConstantTime.equals($0, $1) } ? 1 : 0)
    return 1
}

/// `moonwire.crypto.hex(s)` → s in lowercase hexadecimal, two digits a byte.
private let luaHex: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.crypto.hex") else { return LuaReturn.raise }
    L.push(L.withBytes(at: 1) { Hexadecimal.string($0) }!)
    return 1
}
