// The `res` object: status, headers and body a handler builds, kept in Swift so that reading
// `res.status` and answering never round-trip through Lua tables.
import CLua
import MoonwireCore
import NIOCore

extension LuaVM {
    /// Pushes the methods table of `res`.
    func pushResponseMethods() {
        lua_createtable(L, 0, 8)
        L.setFunction("header", responseHeader)
        L.setFunction("send", responseSend)
        L.setFunction("json", responseJSON)
        L.setFunction("redirect", responseRedirect)
        L.setFunction("file", responseFile)
        L.setFunction("write", responseWrite)
        L.setFunction("finish", responseFinish)
        L.setFunction("sse", responseSSE)
    }
}

/// The live call of the `res` at index 1 for `function`, or nil (and an error message pushed).
/// Unless `streaming` is allowed, the call must not have sent its head yet.
func responseCall(_ L: LuaThread, _ function: LuaAPIFunction, streaming: Bool = false) -> LuaCall? {
    guard let call = LuaVM.call(ofObjectAt: 1, on: L, kind: .response, function: function) else { return nil }
    if !streaming && (call.stream != nil || call.responded) {
        L.push("\(function.name): the response was already sent (res:write or res:finish came first)")
        return nil
    }
    return call
}

/// The fields of `res` other than its methods: `res.status`.
let responseField: LuaFunction = { L in
    let L = L!
    guard isStatusKey(L) else { return 0 }
    guard let call = responseCall(L, LuaAPI.responseStatus, streaming: true) else { return LuaReturn.raise }
    lua_pushinteger(L, lua_Integer(call.status))
    return 1
}

/// Whether the key at 2 is "status", compared as bytes: no String per key read or set.
func isStatusKey(_ L: LuaThread) -> Bool {
    L.type(at: 2) == LUA_TSTRING && L.withBytes(at: 2) { $0.elementsEqual("status".utf8) } == true
}

/// `res.status = code`, with the res at 1 and the code at 3.
func setResponseStatus(_ L: LuaThread) -> Int32 {
    guard let call = responseCall(L, LuaAPI.responseStatus) else { return LuaReturn.raise }
    guard mw_isinteger(L, 3) != 0 || L.number(at: 3).map({ $0 == $0.rounded() }) == true,
        let status = L.number(at: 3), (100...999).contains(status)
    else { return L.raise("res.status must be an integer from 100 to 999, got \(L.describe(at: 3))") }
    call.status = Int(status)
    call.answered = true
    return 0
}

/// `res:header(name, value)`: replaces a header; a list sets repeated fields; nil removes it.
private let responseHeader: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseHeader) else { return LuaReturn.raise }
    guard L.type(at: 2) == LUA_TSTRING, let name = L.string(at: 2), isToken(name) else {
        return L.raise("res:header: expected a header name, got \(L.describe(at: 2))")
    }
    switch L.type(at: 3) {
    case LUA_TNIL, LUA_TNONE:
        call.headers.remove(name: name)
    case LUA_TTABLE:
        call.headers.remove(name: name)
        let count = lua_rawlen(L, 3)
        guard count > 0 else { return 0 }
        for position in 1...count {
            lua_rawgeti(L, 3, lua_Integer(position))
            let value = L.string(at: -1)
            mw_pop(L, 1)
            guard let value, isFieldValue(value) else { return L.raise("res:header: invalid value for \(name)") }
            call.headers.add(name: name, value: value)
        }
    default:
        guard let value = L.string(at: 3), isFieldValue(value) else {
            return L.raise("res:header: invalid value for \(name): \(L.describe(at: 3))")
        }
        call.headers.replaceOrAdd(name: name, value: value)
    }
    return 0
}

/// `res:send(body)`: appends to the body.
private let responseSend: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseSend) else { return LuaReturn.raise }
    guard L.withBytes(at: 2, { call.body.writeBytes($0) }) != nil || L.type(at: 2) == LUA_TNIL else {
        return L.raise("res:send: expected a string, got \(L.describe(at: 2))")
    }
    if call.file != nil { call.file = nil }
    call.answered = true
    return 0
}

/// `res:json(value)`: the body becomes the JSON encoding of value.
private let responseJSON: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseJSON) else { return LuaReturn.raise }
    switch LuaJSON.encode(L, at: 2) {
    case .success(let bytes):
        call.body.clear()
        call.body.writeBytes(bytes)
        call.headers.replaceOrAdd(name: "content-type", value: "application/json")
        call.file = nil
        call.answered = true
        return 0
    case .failure(let error):
        return L.raise("res:json: \(error.message)")
    }
}

/// `res:redirect(url [, status])`: 302 by default.
private let responseRedirect: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseRedirect) else { return LuaReturn.raise }
    guard L.type(at: 2) == LUA_TSTRING, let url = L.string(at: 2), isFieldValue(url) else {
        return L.raise("res:redirect: expected a URL")
    }
    let status = L.type(at: 3) == LUA_TNIL || L.type(at: 3) == LUA_TNONE ? 302 : Int(L.number(at: 3) ?? 0)
    guard (300...399).contains(status) else { return L.raise("res:redirect: status must be 3xx, got \(status)") }
    call.status = status
    call.headers.replaceOrAdd(name: "location", value: url)
    call.answered = true
    return 0
}

/// `res:file(path)`: sends a file from disk (relative paths under the www folder).
private let responseFile: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseFile) else { return LuaReturn.raise }
    guard L.type(at: 2) == LUA_TSTRING, let path = L.string(at: 2), !path.isEmpty else {
        return L.raise("res:file: expected a path")
    }
    call.file = path
    call.body.clear()
    call.answered = true
    return 0
}

/// RFC 9110 token characters, so a script cannot inject header syntax.
private func isToken(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// A field value may not contain CR, LF or NUL (response splitting).
private func isFieldValue(_ value: String) -> Bool {
    !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 }
}
