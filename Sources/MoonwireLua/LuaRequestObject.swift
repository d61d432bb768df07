// The `req` object: a light userdata whose fields are computed from the Swift request when
// read, so a handler pays only for the fields it reads. Tables (headers, query...) are built
// once and kept with whatever fields the script sets itself, until the call ends (see
// mw_pushobject in the shim for why objects are light userdata).
import CLua
import MoonwireCore
import MoonwireRouting
import NIOHTTP1

/// The two kinds of objects a handler gets.
enum LuaObjectKind {
    case request, response

    var name: String { self == .request ? "req" : "res" }
    fileprivate var bits: Int32 { self == .request ? MW_REQUEST : MW_RESPONSE }

    /// The kind of the value at `index`, nil when it is neither a req nor a res.
    init?(ofValueAt index: Int32, on thread: LuaThread) {
        switch mw_objectkind(thread, index) {
        case MW_REQUEST: self = .request
        case MW_RESPONSE: self = .response
        default: return nil
        }
    }
}

extension LuaVM {
    /// Pushes the `req` or `res` object of a call onto `thread`.
    func pushObject(_ kind: LuaObjectKind, for callID: Int, on thread: LuaThread) {
        mw_pushobject(thread, kind.bits, Int64(callID))
    }

    /// The live call of the `kind` object at `index` for `function` (`res:send`, `req.path`),
    /// or nil with an error pushed that says why: called where the function may not run, not
    /// on the object, or on one kept after its call. Static, for the VM the thread belongs to,
    /// which it does not retain: every method of `req` and `res` starts here, and the VM
    /// outlives the calls into it.
    static func call(ofObjectAt index: Int32, on thread: LuaThread, kind: LuaObjectKind, function: LuaAPIFunction) -> LuaCall? {
        let id = mw_objectcall(thread, index, kind.bits)
        return owner(of: thread)._withUnsafeGuaranteedRef { vm in
            if id >= 0, let running = vm.runningCall, function.contexts.contains(running.context), let call = vm.calls[Int(id)] {
                return call
            }
            vm.pushObjectError(at: index, on: thread, kind: kind, function: function, isObject: id >= 0)
            return nil
        }
    }

    /// Why the value at `index` has no live call: the context, not the object, or one kept
    /// after its call.
    @inline(never)
    private func pushObjectError(at index: Int32, on thread: LuaThread, kind: LuaObjectKind, function: LuaAPIFunction, isObject: Bool) {
        guard let running = runningCall, function.contexts.contains(running.context) else {
            return thread.push(function.refusal(in: runningEvent))
        }
        let object = kind.name
        guard isObject else {
            let got = LuaObjectKind(ofValueAt: index, on: thread).map { "the \($0.name) object" }
                ?? "a \(String(cString: mw_typename(thread, index)))"
            let member = function.name.dropFirst(object.count + 1)
            let isMethod = function.name.utf8.dropFirst(object.utf8.count).first == UInt8(ascii: ":")
            let hint = isMethod ? " (call \(object):\(member)(...), not \(object).\(member)(...))" : ""
            return thread.push("\(function.name): expected the \(object) object, got \(got)\(hint)")
        }
        thread.push("\(function.name): the request has finished (a \(object) object cannot be kept after its handler)")
    }

    /// Builds the metatable of `req` and `res` (that of every light userdata) once per VM, and
    /// the table of their fields.
    func installObjectMetatable() {
        lua_createtable(L, 0, 0)
        space.pointee.fields = luaL_ref(L, mw_registryindex())
        lua_createtable(L, 0, 2)
        lua_createtable(L, 0, 1)
        L.setFunction("header", requestHeader)
        L.setFunction("read", requestRead)
        pushResponseMethods()
        mw_pushobjectindex(L, requestField, responseField)
        L.setField(-2, "__index")
        L.setFunction("__newindex", objectNewIndex)
        mw_setobjectmetatable(L)
    }

    /// Ends a call's life as seen from Lua: its objects find it no more, and the fields
    /// scripts set on them are dropped.
    func forget(_ call: LuaCall) {
        if space.pointee.field_tables > 0 { mw_objectsforget(L, Int64(call.id)) }
        calls.end(call)
    }
}

/// The `__newindex` of `req` and `res`: `res.status` is the response's; any other key is a
/// field of the object while its call lives.
private let objectNewIndex: LuaFunction = { L in
    let L = L!
    guard let kind = LuaObjectKind(ofValueAt: 1, on: L) else {
        return L.raise("cannot set a field of a \(String(cString: mw_typename(L, 1))): not a req or res object")
    }
    let keyType = L.type(at: 2)
    if kind == .response, isStatusKey(L) { return setResponseStatus(L) }
    // Checked here: lua_rawset's own error would unwind through this Swift frame.
    if keyType == LUA_TNIL || (keyType == LUA_TNUMBER && L.number(at: 2).map { $0 != $0 } == true) {
        return L.raise("cannot set a field of \(kind.name) under a nil or NaN key")
    }
    let key = keyType == LUA_TSTRING ? L.string(at: 2) ?? "?" : "[\(L.describe(at: 2))]"
    let contexts = kind == .request ? LuaAPI.requestContexts : LuaAPI.responseContexts
    guard LuaVM.call(ofObjectAt: 1, on: L, kind: kind, function: LuaAPIFunction("\(kind.name).\(key)", contexts)) != nil
    else { return LuaReturn.raise }
    mw_objectset(L)
    return 0
}

/// `req:header(name)`: a header's value (repeated fields joined by ", "), case-insensitively.
private let requestHeader: LuaFunction = { L in
    let L = L!
    guard let call = LuaVM.call(ofObjectAt: 1, on: L, kind: .request, function: LuaAPI.requestHeader) else {
        return LuaReturn.raise
    }
    guard let name = L.string(at: 2) else { return L.raise("req:header: expected a header name") }
    let values = call.request.headers[name]
    if values.isEmpty {
        lua_pushnil(L)
        return 1
    }
    L.push(values.count == 1 ? values[0] : values.joined(separator: ", "))
    return 1
}

/// The fields of `req` other than its methods, read from the request. Short strings are pushed
/// at each read (Lua interns them, so a second read allocates nothing); tables are kept in the
/// object, so that a script sees the same table at every read, and so is the body, which may
/// be large.
private let requestField: LuaFunction = { L in
    let L = L!
    guard L.type(at: 2) == LUA_TSTRING, let key = L.withBytes(at: 2, LuaRequestField.init(named:)) else { return 0 }
    guard let field = key else { return 0 }
    guard let call = LuaVM.call(ofObjectAt: 1, on: L, kind: .request, function: field.function) else { return LuaReturn.raise }
    // Field by field: a copy of the whole request would retain every one of its strings.
    let request: HTTPRequest = call.request
    switch field {
    case .method: L.push(request.method)
    case .path: L.push(request.path)
    case .uri: L.push(request.uri)
    case .version: L.push(request.version)
    case .scheme: L.push(request.scheme)
    case .host: L.push(request.host)
    case .remote_ip: L.push(request.connection.remoteIP)
    case .remote_port: lua_pushinteger(L, lua_Integer(request.connection.remotePort))
    case .body: L.push(request.body)
    case .headers: pushHeaderTable(L, request.headers)
    case .query: pushQueryTable(L, request.query)
    case .cookies: pushCookieTable(L, request.headers)
    case .params: pushParams(L, call.params)
    case .user: if let user = call.user { L.push(user) } else { lua_pushnil(L) }
    case .session: LuaVM.from(L).pushSession(L, for: call)
    case .form: pushForm(L, call)
    case .files:
        guard let upload = call.upload else {
            lua_createtable(L, 0, 0)
            break
        }
        pushUploadedFiles(L, upload.files)
    case .api_key:
        // Nothing is remembered for a request without a key: most have none.
        guard let info = call.apiKey else {
            lua_pushnil(L)
            return 1
        }
        pushShared(L, info)
    }
    if field.isKept { mw_objectremember(L) }
    return 1
}

/// The computed fields of `req`, in the order of `names`.
enum LuaRequestField: Int, CaseIterable {
    case method, path, uri, version, scheme, host, remote_ip, remote_port, body, headers, query, cookies, params, user, api_key, session
    case form, files

    /// The fields' names as scripts read them.
    static let names = [
        "method", "path", "uri", "version", "scheme", "host", "remote_ip", "remote_port", "body", "headers", "query", "cookies",
        "params", "user", "api_key", "session", "form", "files",
    ]

    /// Whether a read keeps the value in the object for the next reads.
    var isKept: Bool {
        switch self {
        case .body, .headers, .query, .cookies, .params, .api_key, .session, .form, .files: return true
        default: return false
        }
    }

    /// The field as the context checks name it (`req.path`).
    var function: LuaAPIFunction { Self.functions[rawValue] }

    static let functions = names.map { LuaAPIFunction("req." + $0, LuaAPI.requestContexts) }

    private static let bytes = names.map { Array($0.utf8) }

    /// The field with this name, compared as bytes: a String made from every key read would
    /// cost more than the rest of the read.
    init?(named key: UnsafeRawBufferPointer) {
        guard let position = Self.bytes.firstIndex(where: { $0.count == key.count && $0.elementsEqual(key) }) else { return nil }
        self.init(rawValue: position)
    }
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

/// `req.form`: the fields of an urlencoded body (parsed at the first read), or those a
/// multipart upload kept; a field sent twice gives a list, as in `req.query`. Empty for other
/// bodies.
private func pushForm(_ L: LuaThread, _ call: LuaCall) {
    if let upload = call.upload {
        lua_createtable(L, 0, Int32(upload.fields.count))
        for (name, value) in upload.fields {
            L.push(name)
            L.push(value)
            appendField(L)
        }
        return
    }
    let type = call.request.headers.first(name: "content-type") ?? ""
    guard type.split(separator: ";").first?.trimmingWhitespace.lowercased() == "application/x-www-form-urlencoded" else {
        return lua_createtable(L, 0, 0)
    }
    pushQueryTable(L, Substring(String(buffer: call.request.body)))
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
