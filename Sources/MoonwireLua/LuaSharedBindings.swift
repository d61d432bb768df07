// moonwire.shared: get, set (with TTL), incr and delete on the server-wide SharedStore,
// converting between Lua values and SharedValue.
import CLua
import MoonwireCore

extension LuaVM {
    func installShared() {
        lua_createtable(L, 0, 4)
        L.setFunction("get", luaSharedGet)
        L.setFunction("set", luaSharedSet)
        L.setFunction("incr", luaSharedIncrement)
        L.setFunction("delete", luaSharedDelete)
    }
}

/// The index of the first real argument: methods are called as `moonwire.shared:get(k)`,
/// but `moonwire.shared.get(k)` works too.
private func firstArgument(_ L: LuaThread) -> Int32 {
    L.type(at: 1) == LUA_TTABLE ? 2 : 1
}

private func key(_ L: LuaThread, _ index: Int32) -> String? {
    guard L.type(at: index) == LUA_TSTRING else { return nil }
    return L.string(at: index)
}

private let luaSharedGet: LuaFunction = { L in
    let L = L!
    let first = firstArgument(L)
    guard let name = key(L, first) else { return L.raise("moonwire.shared:get: expected a string key") }
    if let value = LuaVM.from(L).runtime.shared.get(name) { pushShared(L, value) } else { lua_pushnil(L) }
    return 1
}

private let luaSharedSet: LuaFunction = { L in
    let L = L!
    let first = firstArgument(L)
    guard let name = key(L, first) else { return L.raise("moonwire.shared:set: expected a string key") }
    var ttl: Double?
    if L.type(at: first + 2) != LUA_TNIL && L.type(at: first + 2) != LUA_TNONE {
        guard let seconds = L.number(at: first + 2), seconds > 0, seconds.isFinite else {
            return L.raise("moonwire.shared:set: ttl must be a positive number of seconds")
        }
        ttl = seconds
    }
    let value: SharedValue?
    if L.type(at: first + 1) == LUA_TNIL || L.type(at: first + 1) == LUA_TNONE {
        value = nil
    } else {
        switch sharedValue(L, first + 1, depth: 0) {
        case .success(let converted): value = converted
        case .failure(let error): return L.raise("moonwire.shared:set: \(error.message)")
        }
    }
    LuaVM.from(L).runtime.shared.set(name, value, ttl: ttl)
    return 0
}

private let luaSharedIncrement: LuaFunction = { L in
    let L = L!
    let first = firstArgument(L)
    guard let name = key(L, first) else { return L.raise("moonwire.shared:incr: expected a string key") }
    func number(_ index: Int32, default value: SharedValue) -> SharedValue? {
        switch L.type(at: index) {
        case LUA_TNIL, LUA_TNONE: return value
        case LUA_TNUMBER: return mw_isinteger(L, index) != 0 ? .integer(mw_tointeger(L, index, nil)) : .number(mw_tonumber(L, index, nil))
        default: return nil
        }
    }
    guard let delta = number(first + 1, default: .integer(1)), let initial = number(first + 2, default: .integer(0)) else {
        return L.raise("moonwire.shared:incr: the increment and the initial value must be numbers")
    }
    guard let result = LuaVM.from(L).runtime.shared.increment(name, by: delta, initial: initial) else {
        lua_pushnil(L)
        L.push("moonwire.shared:incr: \(name) does not hold a number")
        return 2
    }
    pushShared(L, result)
    return 1
}

private let luaSharedDelete: LuaFunction = { L in
    let L = L!
    let first = firstArgument(L)
    guard let name = key(L, first) else { return L.raise("moonwire.shared:delete: expected a string key") }
    LuaVM.from(L).runtime.shared.delete(name)
    return 0
}

struct ConversionError: Error {
    var message: String
}

/// Copies the Lua value at `index` into a SharedValue.
func sharedValue(_ L: LuaThread, _ index: Int32, depth: Int) -> Result<SharedValue, ConversionError> {
    guard depth < 64 else { return .failure(ConversionError(message: "tables nested deeper than 64 (a cycle?)")) }
    switch L.type(at: index) {
    case LUA_TSTRING:
        return .success(.string(L.withBytes(at: index) { Array($0) } ?? []))
    case LUA_TNUMBER:
        return .success(mw_isinteger(L, index) != 0 ? .integer(mw_tointeger(L, index, nil)) : .number(mw_tonumber(L, index, nil)))
    case LUA_TBOOLEAN:
        return .success(.boolean(lua_toboolean(L, index) != 0))
    case LUA_TTABLE:
        guard lua_checkstack(L, 3) != 0 else { return .failure(ConversionError(message: "stack overflow")) }
        let table = lua_absindex(L, index)
        completeHTTPAnswer(L, table)
        var entries: [SharedKey: SharedValue] = [:]
        lua_pushnil(L)
        while lua_next(L, table) != 0 {
            let key: SharedKey
            switch L.type(at: -2) {
            case LUA_TSTRING: key = .string(L.withBytes(at: -2) { Array($0) } ?? [])
            case LUA_TNUMBER where mw_isinteger(L, -2) != 0: key = .integer(mw_tointeger(L, -2, nil))
            default:
                mw_pop(L, 2)
                return .failure(ConversionError(message: "table keys must be strings or integers"))
            }
            switch sharedValue(L, -1, depth: depth + 1) {
            case .success(let value): entries[key] = value
            case .failure(let error):
                mw_pop(L, 2)
                return .failure(error)
            }
            mw_pop(L, 1)
        }
        return .success(.table(entries))
    default:
        return .failure(ConversionError(message: "cannot store a \(String(cString: mw_typename(L, index)))"))
    }
}

/// Pushes a SharedValue as a fresh Lua value.
func pushShared(_ L: LuaThread, _ value: SharedValue) {
    switch value {
    case .string(let bytes): L.push(bytes: bytes)
    case .integer(let number): lua_pushinteger(L, number)
    case .number(let number): lua_pushnumber(L, number)
    case .boolean(let flag): lua_pushboolean(L, flag ? 1 : 0)
    case .table(let entries):
        lua_checkstack(L, 3)
        lua_createtable(L, 0, Int32(entries.count))
        for (key, element) in entries {
            switch key {
            case .string(let bytes): L.push(bytes: bytes)
            case .integer(let number): lua_pushinteger(L, number)
            }
            pushShared(L, element)
            lua_rawset(L, -3)
        }
    }
}
