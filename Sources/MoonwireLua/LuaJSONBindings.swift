// moonwire.json: encode, decode and the null sentinel.
import CLua

extension LuaVM {
    func installJSON() {
        lua_createtable(L, 0, 3)
        L.setFunction("encode", luaJSONEncode)
        L.setFunction("decode", luaJSONDecode)
        lua_pushlightuserdata(L, nil)
        L.setField(-2, "null")
    }
}

/// `moonwire.json.encode(value)` → string; raises on values JSON cannot hold.
let luaJSONEncode: LuaFunction = { L in
    let L = L!
    switch LuaJSON.encode(L, at: 1) {
    case .success(let bytes):
        L.push(bytes: bytes)
        return 1
    case .failure(let error):
        return L.raise("moonwire.json.encode: \(error.message)")
    }
}

/// `moonwire.json.decode(text)` → value, or nil and the error.
let luaJSONDecode: LuaFunction = { L in
    let L = L!
    guard L.type(at: 1) == LUA_TSTRING else {
        return L.raise("moonwire.json.decode: expected a string, got \(L.describe(at: 1))")
    }
    let error = L.withBytes(at: 1) { LuaJSON.decode(L, $0) } ?? "not a string"
    if let error {
        lua_pushnil(L)
        L.push("moonwire.json.decode: \(error)")
        return 2
    }
    return 1
}
