// moonwire.apikeys: add, remove and check on the server's API key store (Core's
// APIKeyStore), which every event loop shares and which outlives script reloads; with a
// cluster, on Redis instead (LuaClusterAPIKeys.swift). Keys reach Swift as bytes and are kept
// only as their SHA-256 digest; a key's info is a table of plain values (a name, scopes...),
// copied as moonwire.shared copies values.
import CLua
import MoonwireCore

extension LuaAPI {
    static let apiKeysAdd = LuaAPIFunction("moonwire.apikeys.add", .anywhere)
    static let apiKeysRemove = LuaAPIFunction("moonwire.apikeys.remove", .anywhere)
    static let apiKeysCheck = LuaAPIFunction("moonwire.apikeys.check", .anywhere)
    /// Anywhere: keys are added while the scripts load (on every loop and every reload: adding
    /// a key again replaces its info) and while serving (an admin endpoint).
    static let apiKeyFunctions = [apiKeysAdd, apiKeysRemove, apiKeysCheck]
}

extension LuaVM {
    /// Pushes the moonwire.apikeys table.
    func installAPIKeys() {
        lua_createtable(L, 0, 3)
        L.setFunction("add", luaAPIKeysAdd)
        L.setFunction("remove", luaAPIKeysRemove)
        L.setFunction("check", luaAPIKeysCheck)
    }
}

/// The key argument of a moonwire.apikeys function: a non-empty string.
private func keyArgument(_ L: LuaThread) -> [UInt8]? {
    guard L.type(at: 1) == LUA_TSTRING, let bytes = L.withBytes(at: 1, { Array($0) }), !bytes.isEmpty else { return nil }
    return bytes
}

/// `moonwire.apikeys.add(key [, info])`: stores the key (its digest) with its info table.
private let luaAPIKeysAdd: LuaFunction = { L in
    let L = L!
    guard let key = keyArgument(L) else {
        return L.raise("moonwire.apikeys.add: expected the key (a non-empty string), got \(L.describe(at: 1))")
    }
    var info = SharedValue.table([:])
    switch L.type(at: 2) {
    case LUA_TNIL, LUA_TNONE:
        break
    case LUA_TTABLE:
        switch sharedValue(L, 2, depth: 0) {
        case .success(let value): info = value
        case .failure(let error): return L.raise("moonwire.apikeys.add: info: \(error.message)")
        }
    default:
        return L.raise("moonwire.apikeys.add: info must be a table (name=, ...), got \(L.describe(at: 2))")
    }
    let vm = LuaVM.from(L)
    if let client = vm.loopRedis {
        vm.addSharedAPIKey(key, info: info, on: client)
    } else {
        vm.runtime.apiKeys.add(key, info: info)
    }
    return 0
}

/// `moonwire.apikeys.remove(key)`: true when the key was there (with a cluster, `nil, err` when
/// Redis does not answer).
private let luaAPIKeysRemove: LuaFunction = { L in
    let L = L!
    guard let key = keyArgument(L) else {
        return L.raise("moonwire.apikeys.remove: expected the key (a non-empty string), got \(L.describe(at: 1))")
    }
    let vm = LuaVM.from(L)
    guard let client = vm.loopRedis else {
        lua_pushboolean(L, vm.runtime.apiKeys.remove(key) ? 1 : 0)
        return 1
    }
    return LuaVM.waitForSharedAPIKey(L, LuaAPI.apiKeysRemove) { answer in
        RedisAPIKeys.remove(APIKeyDigest(of: key), on: client) { result in answer(result.map { .boolean($0) }) }
    }
}

/// `moonwire.apikeys.check(key)`: a copy of the key's info, or nil (also for a nil key, so that
/// `check(req:header("x-api-key"))` needs no test first; with a cluster, `nil, err` when Redis
/// does not answer).
private let luaAPIKeysCheck: LuaFunction = { L in
    let L = L!
    if L.type(at: 1) == LUA_TNIL || L.type(at: 1) == LUA_TNONE {
        lua_pushnil(L)
        return 1
    }
    guard L.type(at: 1) == LUA_TSTRING, let key = L.withBytes(at: 1, { Array($0) }) else {
        return L.raise("moonwire.apikeys.check: expected the key (a string), got \(L.describe(at: 1))")
    }
    let vm = LuaVM.from(L)
    guard let client = vm.loopRedis else {
        if let info = vm.runtime.apiKeys.check(key) { pushShared(L, info) } else { lua_pushnil(L) }
        return 1
    }
    return LuaVM.waitForSharedAPIKey(L, LuaAPI.apiKeysCheck) { answer in RedisAPIKeys.check(APIKeyDigest(of: key), on: client, completion: answer) }
}
