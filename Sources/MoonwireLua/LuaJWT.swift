// moonwire.jwt: verify and sign JSON Web Tokens (RFC 7519) in compact JWS form. The signature
// work is JWS.swift's (swift-crypto, synchronous: see there why not jwt-kit); this file reads
// the options, decodes header and claims with moonwire.json's decoder, and checks the claims.
// Secure by default: `alg: none` is never accepted, a token's algorithm must be one the caller
// allows (by default only the key's own), and exp/nbf are always checked when present.
// A bad token is a value (`nil, err`); a bad call (no key, unknown option) raises.
import CLua
import Foundation

extension LuaAPI {
    /// moonwire.jwt: pure functions, anywhere.
    static let jwtFunctions = ["moonwire.jwt.verify", "moonwire.jwt.sign"].map { LuaAPIFunction($0, .anywhere) }
}

extension LuaVM {
    func installJWT() {
        lua_createtable(L, 0, 2)
        L.setFunction("verify", luaJWTVerify)
        L.setFunction("sign", luaJWTSign)
    }
}

/// The longest token verify reads; longer ones are refused unparsed.
let maximumTokenLength = 65536

/// What verify checks, from its options table.
private struct VerifyOptions {
    var key: JWSKey
    var algorithms: [JWSAlgorithm]
    var leeway: Double = 0
    var audiences: [String]?
    var issuer: String?
}

/// Reads the key of an options table: `secret`, or `public_key` (verify) / `private_key`
/// (sign) as PEM; exactly one. The error is the message to raise.
private func readKey(_ L: LuaThread, _ options: Int32, pem pemName: String, function: String) -> Result<JWSKey, JWSError> {
    let secretType = L.rawField(options, "secret")
    let pemType = L.rawField(options, pemName)
    defer { mw_pop(L, 2) }
    switch (secretType, pemType) {
    case (LUA_TSTRING, LUA_TNIL):
        guard lua_rawlen(L, -2) > 0 else { return .failure(JWSError("\(function): secret must not be empty")) }
        return .success(.secret(.init(data: L.withBytes(at: -2) { Array($0) }!)))
    case (LUA_TNIL, LUA_TSTRING):
        let pem = L.string(at: -1)!
        do throws(JWSError) {
            return .success(pemName == "public_key" ? try JWSKey(publicPEM: pem) : try JWSKey(privatePEM: pem))
        } catch {
            return .failure(JWSError("\(function): \(error.message)"))
        }
    case (LUA_TNIL, LUA_TNIL): return .failure(JWSError("\(function): expected a key: secret = ... or \(pemName) = ... (PEM)"))
    case (LUA_TSTRING, LUA_TSTRING): return .failure(JWSError("\(function): give secret or \(pemName), not both"))
    default: return .failure(JWSError("\(function): secret and \(pemName) must be strings"))
    }
}

/// An algorithm name a script passed: one of JWSAlgorithm, never "none".
private func algorithm(named name: String, function: String) -> Result<JWSAlgorithm, JWSError> {
    if let algorithm = JWSAlgorithm(rawValue: name) { return .success(algorithm) }
    let known = JWSAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
    if name.lowercased() == "none" { return .failure(JWSError("\(function): alg none is never accepted (use one of \(known))")) }
    return .failure(JWSError("\(function): unknown algorithm \(name) (use one of \(known))"))
}

/// The error for the first key of the options table at `index` that is not in `known`, if any.
private func unknownOption(_ L: LuaThread, _ index: Int32, known: [String]) -> String? {
    lua_pushnil(L)
    while lua_next(L, index) != 0 {
        mw_pop(L, 1)
        let name = L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
        if let name, known.contains(name) { continue }
        let shown = name ?? L.describe(at: -1)
        mw_pop(L, 1)
        return "unknown option \(shown) (options are \(known.joined(separator: ", ")))"
    }
    return nil
}

private func verifyOptions(_ L: LuaThread) -> Result<VerifyOptions, JWSError> {
    let function = "moonwire.jwt.verify"
    guard L.type(at: 2) == LUA_TTABLE else { return .failure(JWSError("\(function): expected an options table as argument 2")) }
    if let unknown = unknownOption(L, 2, known: ["secret", "public_key", "algorithms", "leeway", "audience", "issuer"]) {
        return .failure(JWSError("\(function): \(unknown)"))
    }
    let key: JWSKey
    switch readKey(L, 2, pem: "public_key", function: function) {
    case .success(let found): key = found
    case .failure(let error): return .failure(error)
    }
    var options = VerifyOptions(key: key, algorithms: [key.defaultAlgorithm])
    let top = lua_gettop(L)
    defer { lua_settop(L, top) }
    switch L.rawField(2, "algorithms") {
    case LUA_TNIL: break
    case LUA_TTABLE where lua_rawlen(L, -1) > 0:
        options.algorithms = []
        for position in 1...lua_rawlen(L, -1) {
            lua_rawgeti(L, -1, lua_Integer(position))
            let name = L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
            mw_pop(L, 1)
            guard let name else { return .failure(JWSError("\(function): algorithms must be a list of names such as \"HS256\"")) }
            switch algorithm(named: name, function: function) {
            case .success(let found): options.algorithms.append(found)
            case .failure(let error): return .failure(error)
            }
        }
    default: return .failure(JWSError("\(function): algorithms must be a list of names such as \"HS256\""))
    }
    switch L.rawField(2, "leeway") {
    case LUA_TNIL: break
    case LUA_TNUMBER where L.number(at: -1)! >= 0 && L.number(at: -1)!.isFinite: options.leeway = L.number(at: -1)!
    default: return .failure(JWSError("\(function): leeway must be a number of seconds, 0 or more"))
    }
    switch L.rawField(2, "audience") {
    case LUA_TNIL: break
    case LUA_TSTRING: options.audiences = [L.string(at: -1)!]
    case LUA_TTABLE:
        options.audiences = (0..<lua_rawlen(L, -1)).compactMap { position in
            lua_rawgeti(L, -1, lua_Integer(position + 1))
            defer { mw_pop(L, 1) }
            return L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
        }
        guard options.audiences!.count == Int(lua_rawlen(L, -1)) else {
            return .failure(JWSError("\(function): audience must be a string or a list of strings"))
        }
    default: return .failure(JWSError("\(function): audience must be a string or a list of strings"))
    }
    switch L.rawField(2, "issuer") {
    case LUA_TNIL: break
    case LUA_TSTRING: options.issuer = L.string(at: -1)!
    default: return .failure(JWSError("\(function): issuer must be a string"))
    }
    return .success(options)
}

/// `moonwire.jwt.verify(token, options)` → the claims table, or nil and why the token is refused.
private let luaJWTVerify: LuaFunction = { L in
    let L = L!
    let options: VerifyOptions
    switch verifyOptions(L) {
    case .success(let read): options = read
    case .failure(let error): return L.raise(error.message)
    }
    do throws(JWSError) {
        guard L.type(at: 1) == LUA_TSTRING else { throw JWSError("no token (got \(L.describe(at: 1)))") }
        guard lua_rawlen(L, 1) <= maximumTokenLength else { throw JWSError("token longer than \(maximumTokenLength) bytes") }
        try verify(L, token: 1, options)
        return 1
    } catch {
        lua_pushnil(L)
        L.push(error.message)
        return 2
    }
}

/// Checks the token at `index`; on success pushes its claims.
private func verify(_ L: LuaThread, token index: Int32, _ options: VerifyOptions) throws(JWSError) {
    let token = try JWS.parse(L.withBytes(at: index) { Array($0) }!)
    try pushObject(L, token.header, part: "header")
    let header = lua_gettop(L)
    defer {
        lua_rotate(L, header, -1)  // lua_remove, a macro Swift cannot call
        mw_pop(L, 1)
    }
    guard L.rawField(header, "alg") == LUA_TSTRING, let name = L.string(at: -1) else {
        throw JWSError("malformed token: the header has no alg")
    }
    mw_pop(L, 1)
    guard name.lowercased() != "none" else { throw JWSError("alg none is refused") }
    guard let algorithm = JWSAlgorithm(rawValue: name) else { throw JWSError("unsupported algorithm \(name)") }
    guard options.algorithms.contains(algorithm) else { throw JWSError("algorithm \(name) is not allowed") }
    guard options.key.algorithms.contains(algorithm) else { throw JWSError("algorithm \(name) does not match the key") }
    guard L.rawField(header, "crit") == LUA_TNIL else {
        throw JWSError("the header has critical extensions (crit), which are not understood")
    }
    mw_pop(L, 1)
    guard JWS.isValid(token.signature, of: token.signingInput, algorithm: algorithm, key: options.key) else {
        throw JWSError("signature mismatch")
    }
    try pushObject(L, token.payload, part: "claims")
    do throws(JWSError) {
        try checkClaims(L, lua_gettop(L), options)
    } catch {
        mw_pop(L, 1)
        throw error
    }
}

/// Decodes a JSON object onto the stack.
private func pushObject(_ L: LuaThread, _ json: [UInt8], part: String) throws(JWSError) {
    guard json.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") else {
        throw JWSError("malformed token: the \(part) is not a JSON object")
    }
    if let error = json.withUnsafeBytes({ LuaJSON.decode(L, $0) }) { throw JWSError("malformed token: the \(part) is not JSON (\(error))") }
}

/// exp, nbf (with the leeway), iss and aud of the claims table at `claims`.
private func checkClaims(_ L: LuaThread, _ claims: Int32, _ options: VerifyOptions) throws(JWSError) {
    let now = Date().timeIntervalSince1970
    func time(_ name: String) throws(JWSError) -> Double? {
        defer { mw_pop(L, 1) }
        switch L.rawField(claims, name) {
        case LUA_TNIL: return nil
        case LUA_TNUMBER: return L.number(at: -1)!
        default: throw JWSError("malformed token: \(name) is not a number")
        }
    }
    if let expires = try time("exp"), now >= expires + options.leeway { throw JWSError("token expired") }
    if let notBefore = try time("nbf"), now + options.leeway < notBefore { throw JWSError("token not valid yet (nbf)") }
    if let issuer = options.issuer {
        defer { mw_pop(L, 1) }
        guard L.rawField(claims, "iss") == LUA_TSTRING, L.string(at: -1) == issuer else { throw JWSError("wrong issuer") }
    }
    var audiences: [String] = []
    switch L.rawField(claims, "aud") {
    case LUA_TNIL: break
    case LUA_TSTRING: audiences = [L.string(at: -1)!]
    case LUA_TTABLE:
        for position in 0..<lua_rawlen(L, -1) {
            lua_rawgeti(L, -1, lua_Integer(position + 1))
            if L.type(at: -1) == LUA_TSTRING { audiences.append(L.string(at: -1)!) }
            mw_pop(L, 1)
        }
    default: break
    }
    mw_pop(L, 1)
    switch (options.audiences, audiences.isEmpty) {
    case (nil, true): break
    // RFC 7519 section 4.1.3: a token meant for named audiences is refused by one that does not
    // say who it is.
    case (nil, false): throw JWSError("the token names an audience (aud) and no audience option was given")
    case (let expected?, _): guard audiences.contains(where: { expected.contains($0) }) else { throw JWSError("wrong audience") }
    }
}

/// `moonwire.jwt.sign(claims, {secret= | private_key=, alg=})` → the compact token.
private let luaJWTSign: LuaFunction = { L in
    let L = L!
    let function = "moonwire.jwt.sign"
    guard L.type(at: 1) == LUA_TTABLE else { return L.raise("\(function): expected a claims table, got \(L.describe(at: 1))") }
    guard L.type(at: 2) == LUA_TTABLE else { return L.raise("\(function): expected an options table as argument 2") }
    if let unknown = unknownOption(L, 2, known: ["secret", "private_key", "alg"]) { return L.raise("\(function): \(unknown)") }
    let signingKey: JWSKey
    switch readKey(L, 2, pem: "private_key", function: function) {
    case .success(let found): signingKey = found
    case .failure(let error): return L.raise(error.message)
    }
    var chosen = signingKey.defaultAlgorithm
    switch L.rawField(2, "alg") {
    case LUA_TNIL: break
    case LUA_TSTRING:
        switch algorithm(named: L.string(at: -1)!, function: function) {
        case .success(let named): chosen = named
        case .failure(let error): return L.raise(error.message)
        }
        guard signingKey.algorithms.contains(chosen) else { return L.raise("\(function): alg \(chosen.rawValue) does not match the key") }
    default: return L.raise("\(function): alg must be a string such as \"HS256\"")
    }
    mw_pop(L, 1)
    let payload: [UInt8]
    switch LuaJSON.encode(L, at: 1) {
    case .success(let json) where json.first == UInt8(ascii: "{"): payload = json
    case .success: return L.raise("\(function): claims must be a table with string keys (a JSON object)")
    case .failure(let error): return L.raise("\(function): claims: \(error.message)")
    }
    let header = Array(#"{"alg":"\#(chosen.rawValue)","typ":"JWT"}"#.utf8)
    do throws(JWSError) {
        L.push(try JWS.sign(header: header, payload: payload, algorithm: chosen, key: signingKey))
        return 1
    } catch {
        return L.raise("\(function): \(error.message)")
    }
}
