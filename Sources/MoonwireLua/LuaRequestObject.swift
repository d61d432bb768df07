// The `req` object: a table whose fields are computed from the Swift request on first use and
// then cached in the table, so a handler pays only for the fields it reads.
import CLua
import MoonwireCore
import MoonwireRouting
import NIOHTTP1

/// The hidden table key under which `req` and `res` keep their call's id.
enum LuaCallKey {
    nonisolated(unsafe) static let pointer = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
}

extension LuaVM {
    /// Pushes a new `req` table for a call onto `thread`.
    func pushRequestObject(_ callID: Int, on thread: LuaThread) {
        lua_createtable(thread, 0, 4)
        lua_pushlightuserdata(thread, LuaCallKey.pointer)
        lua_pushinteger(thread, lua_Integer(callID))
        lua_rawset(thread, -3)
        lua_rawgeti(thread, mw_registryindex(), lua_Integer(requestMetatableRef))
        lua_setmetatable(thread, -2)
    }

    /// The live call a `req`/`res` table at `index` belongs to.
    func call(ofObjectAt index: Int32, on thread: LuaThread) -> LuaHandlerCall? {
        lua_pushlightuserdata(thread, LuaCallKey.pointer)
        lua_rawget(thread, index)
        defer { mw_pop(thread, 1) }
        return calls[Int(mw_tointeger(thread, -1, nil))]
    }

    /// Builds the metatables of `req` and `res` once per VM.
    func installObjectMetatables() throws(LuaScriptError) {
        lua_createtable(L, 0, 2)
        lua_createtable(L, 0, 1)
        L.setFunction("header", requestHeader)
        try pushObjectIndex(fields: requestField)
        L.setField(-2, "__index")
        requestMetatableRef = luaL_ref(L, mw_registryindex())
        try installResponseMetatable()
    }

    /// Replaces the methods table on top of the stack with an `__index` function that finds
    /// those methods, and asks `fields` for any other key.
    func pushObjectIndex(fields: LuaFunction) throws(LuaScriptError) {
        try load(source: LuaPrelude.objectIndex, name: "moonwire.object")
        mw_insert(L, -2)
        L.push(fields)
        try protectedCall(arguments: 2, results: 1)
    }
}

/// `req:header(name)`: a header's value (repeated fields joined by ", "), case-insensitively.
private let requestHeader: LuaFunction = { L in
    let L = L!
    guard let call = LuaVM.from(L).call(ofObjectAt: 1, on: L) else { return L.raise("req:header: the request has finished") }
    guard let name = L.string(at: 2) else { return L.raise("req:header: expected a header name") }
    let values = call.request.headers[name]
    if values.isEmpty { return 0 }
    L.push(values.count == 1 ? values[0] : values.joined(separator: ", "))
    return 1
}

/// The fields of `req`, computed from the request and cached in the table.
private let requestField: LuaFunction = { L in
    let L = L!
    guard L.type(at: 2) == LUA_TSTRING, let key = L.string(at: 2) else { return 0 }
    guard let call = LuaVM.from(L).call(ofObjectAt: 1, on: L) else {
        return L.raise("req.\(key): the request has finished (a req object cannot be kept after its handler)")
    }
    // Field by field: a copy of the whole request would retain every one of its strings.
    switch key {
    case "method": L.push(call.request.method)
    case "path": L.push(call.request.path)
    case "uri": L.push(call.request.uri)
    case "version": L.push(call.request.version)
    case "scheme": L.push(call.request.scheme)
    case "host": L.push(call.request.host)
    case "remote_ip": L.push(call.request.connection.remoteIP)
    case "remote_port": lua_pushinteger(L, lua_Integer(call.request.connection.remotePort))
    case "body": L.push(call.request.body)
    case "headers": pushHeaderTable(L, call.request.headers)
    case "query": pushQueryTable(L, call.request.query)
    case "cookies": pushCookieTable(L, call.request.headers)
    case "params": pushParams(L, call.params)
    default: return 0
    }
    lua_pushvalue(L, 2)
    lua_pushvalue(L, -2)
    lua_rawset(L, 1)
    return 1
}

private func pushParams(_ L: LuaThread, _ params: RouteParams) {
    lua_createtable(L, Int32(params.numbered.count), Int32(params.named.count))
    for (number, value) in params.numbered {
        L.push(value)
        lua_rawseti(L, -2, lua_Integer(number))
    }
    for (name, value) in params.named {
        L.push(value)
        L.setField(-2, name)
    }
}

func pushHeaderTable(_ L: LuaThread, _ headers: HTTPHeaders) {
    lua_createtable(L, 0, Int32(headers.count))
    for (name, value) in headers {
        let lowered = name.lowercased()
        if lua_getfield(L, -1, lowered) == LUA_TSTRING {
            L.push(", " + value)
            lua_concat(L, 2)
        } else {
            mw_pop(L, 1)
            L.push(value)
        }
        L.setField(-2, lowered)
    }
}

/// `?a=1&a=2&flag` → {a = {"1", "2"}, flag = true}, as OpenResty's ngx.req.get_uri_args.
func pushQueryTable(_ L: LuaThread, _ query: Substring) {
    lua_createtable(L, 0, 4)
    for pair in query.utf8.split(separator: UInt8(ascii: "&")) where !pair.isEmpty {
        let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
        L.push(bytes: PercentEncoding.decodeQueryComponent(parts[0]))
        if parts.count == 2 {
            L.push(bytes: PercentEncoding.decodeQueryComponent(parts[1]))
        } else {
            lua_pushboolean(L, 1)
        }
        appendField(L)
    }
}

/// With table, key, value on top: sets table[key] = value, or turns repeats into a list.
private func appendField(_ L: LuaThread) {
    lua_pushvalue(L, -2)
    switch lua_rawget(L, -4) {
    case LUA_TNIL:
        mw_pop(L, 1)
        lua_rawset(L, -3)
    case LUA_TTABLE:
        let count = lua_rawlen(L, -1)
        mw_insert(L, -2)
        lua_rawseti(L, -2, lua_Integer(count + 1))
        mw_pop(L, 2)
    default:
        lua_createtable(L, 2, 0)
        mw_insert(L, -2)
        lua_rawseti(L, -2, 1)
        mw_insert(L, -2)
        lua_rawseti(L, -2, 2)
        lua_rawset(L, -3)
    }
}

private func pushCookieTable(_ L: LuaThread, _ headers: HTTPHeaders) {
    lua_createtable(L, 0, 4)
    for header in headers["cookie"] {
        for pair in header.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = parts.first?.trimmingWhitespace, !name.isEmpty else { continue }
            L.push(name)
            L.push(parts.count == 2 ? parts[1].trimmingWhitespace : "")
            lua_rawset(L, -3)
        }
    }
}
