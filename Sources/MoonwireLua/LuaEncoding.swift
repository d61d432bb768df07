// moonwire.base64, moonwire.url and moonwire.uuid: the encodings a handler needs to build and
// read credentials, links and identifiers. Base64 is Foundation's (see Base64.swift); percent
// encoding is Core's, the one requests are decoded with, so req.query and
// moonwire.url.parse_query agree.
import CLua
import MoonwireCore

extension LuaAPI {
    /// moonwire.base64, moonwire.url and moonwire.uuid: pure functions, anywhere.
    static let encodingFunctions = [
        "moonwire.base64.encode", "moonwire.base64.decode", "moonwire.url.encode", "moonwire.url.decode",
        "moonwire.url.parse_query", "moonwire.url.build_query", "moonwire.uuid",
    ].map { LuaAPIFunction($0, .anywhere) }
}

extension LuaVM {
    /// Sets `base64`, `url` and `uuid` on the table on top of the stack (the module).
    func installEncodings() {
        lua_createtable(L, 0, 2)
        L.setFunction("encode", luaBase64Encode)
        L.setFunction("decode", luaBase64Decode)
        L.setField(-2, "base64")
        lua_createtable(L, 0, 4)
        L.setFunction("encode", luaURLEncode)
        L.setFunction("decode", luaURLDecode)
        L.setFunction("parse_query", luaParseQuery)
        L.setFunction("build_query", luaBuildQuery)
        L.setField(-2, "url")
        L.setFunction("uuid", luaUUID)
    }
}

/// `moonwire.base64.encode(s [, url_safe])` → standard base64 with padding, or with
/// `url_safe` the URL alphabet (`-`, `_`) without padding.
private let luaBase64Encode: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.base64.encode") else { return LuaReturn.raise }
    let urlSafe = lua_toboolean(L, 2) != 0
    L.push(L.withBytes(at: 1) { Base64.encode($0, urlSafe: urlSafe) }!)
    return 1
}

/// `moonwire.base64.decode(s [, url_safe])` → the bytes, or nil and an error for input that is
/// not base64 of that alphabet (URL-safe input may leave out its padding).
private let luaBase64Decode: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.base64.decode") else { return LuaReturn.raise }
    let urlSafe = lua_toboolean(L, 2) != 0
    guard let bytes = L.withBytes(at: 1, { Base64.decode($0, urlSafe: urlSafe) })! else {
        lua_pushnil(L)
        L.push("moonwire.base64.decode: invalid \(urlSafe ? "base64url" : "base64") input")
        return 2
    }
    L.push(bytes: bytes)
    return 1
}

/// `moonwire.url.encode(s)` → s with every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`.
private let luaURLEncode: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.url.encode") else { return LuaReturn.raise }
    L.push(bytes: L.withBytes(at: 1) { PercentEncoding.encodeComponent($0) }!)
    return 1
}

/// `moonwire.url.decode(s)` → s with its `%XX` escapes decoded (`+` stays), or nil and an
/// error for a malformed escape.
private let luaURLDecode: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.url.decode") else { return LuaReturn.raise }
    guard let bytes = L.withBytes(at: 1, { PercentEncoding.decodeComponent($0) })! else {
        lua_pushnil(L)
        L.push("moonwire.url.decode: malformed %-escape")
        return 2
    }
    L.push(bytes: bytes)
    return 1
}

/// `moonwire.url.parse_query(s)` → the table req.query would hold for `?s` (a leading `?` is
/// skipped): repeated keys give a list, a key without `=` gives true.
private let luaParseQuery: LuaFunction = { L in
    let L = L!
    guard L.checkStrings(1, of: "moonwire.url.parse_query") else { return LuaReturn.raise }
    let text = L.withBytes(at: 1) { Substring(decoding: $0, as: UTF8.self) }!
    pushQueryTable(L, text.first == "?" ? text.dropFirst() : text)
    return 1
}

/// `moonwire.url.build_query(t)` → `a=1&b=x%20y`, keys sorted so the same table gives the
/// same text; a list value repeats its key, true gives the bare key, false leaves it out.
private let luaBuildQuery: LuaFunction = { L in
    let L = L!
    let name = "moonwire.url.build_query"
    guard L.type(at: 1) == LUA_TTABLE else { return L.raise("\(name): expected a table, got \(L.describe(at: 1))") }
    var pairs: [(key: [UInt8], values: [QueryValue])] = []
    lua_pushnil(L)
    while lua_next(L, 1) != 0 {
        guard L.type(at: -2) == LUA_TSTRING || L.type(at: -2) == LUA_TNUMBER else {
            mw_pop(L, 2)
            return L.raise("\(name): keys must be strings or numbers")
        }
        let key = queryBytes(L, -2)
        var values: [QueryValue] = []
        var valid = true
        if L.type(at: -1) == LUA_TTABLE {
            for position in 0..<lua_rawlen(L, -1) {
                lua_rawgeti(L, -1, lua_Integer(position + 1))
                if let value = QueryValue(L, -1) { values.append(value) } else { valid = false }
                mw_pop(L, 1)
            }
        } else if let value = QueryValue(L, -1) {
            values.append(value)
        } else {
            valid = false
        }
        guard valid else {
            mw_pop(L, 2)
            return L.raise("\(name): the value of \(String(decoding: key, as: UTF8.self)) must be a string, number, boolean or a list of them")
        }
        pairs.append((key, values))
        mw_pop(L, 1)
    }
    var out: [UInt8] = []
    for pair in pairs.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
        for value in pair.values {
            if case .omitted = value { continue }
            if !out.isEmpty { out.append(UInt8(ascii: "&")) }
            out += PercentEncoding.encodeComponent(pair.key)
            if case .text(let bytes) = value { out += [UInt8(ascii: "=")] + PercentEncoding.encodeComponent(bytes) }
        }
    }
    L.push(bytes: out)
    return 1
}

/// One value of a query parameter as a script gives it.
private enum QueryValue {
    /// A string or number: `key=value`.
    case text([UInt8])
    /// true: the bare key.
    case bare
    /// false: nothing.
    case omitted

    /// The value at `index`, or nil for a type a query cannot hold.
    init?(_ L: LuaThread, _ index: Int32) {
        switch L.type(at: index) {
        case LUA_TBOOLEAN: self = lua_toboolean(L, index) != 0 ? .bare : .omitted
        case LUA_TSTRING, LUA_TNUMBER: self = .text(queryBytes(L, index))
        default: return nil
        }
    }
}

/// The bytes of a string or number, converting a copy so a key under lua_next stays as it is.
private func queryBytes(_ L: LuaThread, _ index: Int32) -> [UInt8] {
    lua_pushvalue(L, index)
    defer { mw_pop(L, 1) }
    return L.withBytes(at: -1) { Array($0) }!
}

/// `moonwire.uuid()` → a random (version 4) UUID in lowercase, from the system's CSPRNG.
private let luaUUID: LuaFunction = { L in
    let L = L!
    var bytes = randomBytes(16)
    bytes[6] = bytes[6] & 0x0F | 0x40  // version 4
    bytes[8] = bytes[8] & 0x3F | 0x80  // the RFC 9562 variant
    var text: [UInt8] = []
    for (index, byte) in bytes.enumerated() {
        if [4, 6, 8, 10].contains(index) { text.append(UInt8(ascii: "-")) }
        Hexadecimal.append(byte, to: &text)
    }
    L.push(bytes: text)
    return 1
}
