// moonwire.vhost, moonwire.get/post/put/delete/patch/options/head/route and the host
// objects' methods of the same names: the scripts' route table, declared while they load.
import CLua
import MoonwireCore
import MoonwireRouting

/// The hidden key under which a host object keeps its position in `LuaVM.hosts`.
private enum LuaHostKey {
    nonisolated(unsafe) static let pointer = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
}

private let routeMethods = ["get": "GET", "post": "POST", "put": "PUT", "delete": "DELETE", "patch": "PATCH",
    "options": "OPTIONS", "head": "HEAD"]

extension LuaVM {
    /// Adds the routing functions to the module table on top of the stack, and keeps a
    /// metatable for host objects in the registry.
    func installRouting() {
        pushRouteFunctions()
        lua_pushnil(L)
        while lua_next(L, -2) != 0 {
            // moonwire.options stays the settings function; it adds an OPTIONS route when
            // given a path instead of a table.
            if L.string(at: -2) == "options" {
                mw_pop(L, 1)
                continue
            }
            lua_pushvalue(L, -2)
            mw_insert(L, -2)
            lua_settable(L, -5)
        }
        mw_pop(L, 1)
        L.setFunction("vhost", luaVirtualHost)
        lua_createtable(L, 0, 1)
        pushRouteFunctions()
        L.setField(-2, "__index")
        hostMetatableRef = luaL_ref(L, mw_registryindex())
    }

    /// Pushes a table of get, post... and route, each a closure over its method.
    private func pushRouteFunctions() {
        lua_createtable(L, 0, 9)
        for (name, method) in routeMethods {
            L.push(method)
            mw_pushswiftclosure(L, luaAddRoute, 1)
            L.setField(-2, name)
        }
        lua_pushnil(L)
        mw_pushswiftclosure(L, luaAddRoute, 1)
        L.setField(-2, "route")
        L.setFunction("proxy", luaAddProxy)
    }
}

/// `moonwire.vhost(pattern [, options])`: a host object whose routes apply when the Host
/// header (without port) matches the whole pattern, case-insensitively.
private let luaVirtualHost: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.vhost) else { return LuaReturn.raise }
    guard L.type(at: 1) == LUA_TSTRING, let pattern = L.string(at: 1) else {
        return L.raise("moonwire.vhost: expected a host pattern, got \(L.describe(at: 1))")
    }
    let host: HostID
    do {
        host = try vm.router.addHost(pattern: pattern)
    } catch {
        return L.raise("moonwire.vhost: \(error)")
    }
    if L.type(at: 2) != LUA_TNONE && L.type(at: 2) != LUA_TNIL {
        guard L.type(at: 2) == LUA_TTABLE else { return L.raise("moonwire.vhost: the options must be a table") }
        if let error = LuaSettingKeys.unknownKey(L, at: 2, known: LuaSettingKeys.virtualHost) {
            return L.raise("moonwire.vhost: \(error)")
        }
        switch readAuthOption(L, at: 2) {
        case .success(let auth): if let auth { vm.authentication.hosts[host] = auth }
        case .failure(let error): return L.raise("moonwire.vhost: \(error.message)")
        }
        L.rawField(2, "www")
        if let root = L.string(at: -1) { vm.hostRoots[host] = root }
        L.rawField(2, "tls")
        let tls = L.type(at: -1) == LUA_TNIL ? nil : readTLS(L, at: -1)
        mw_pop(L, 2)
        switch tls {
        case .success(let settings):
            // The pattern compiled above as a host pattern, so it compiles here too.
            let regex = try? Regex(pattern, options: [.utf, .wholeSubject, .caseless])
            vm.settings.hostCertificates.append(
                SNICertificate(
                    matches: { name in regex.map { (try? $0.match(name)) != nil } ?? false }, identity: settings.identity))
        case .failure(let error):
            return L.raise("moonwire.vhost: tls: \(error.text)")
        case nil:
            break
        }
    }
    vm.hosts.append(host)
    lua_createtable(L, 0, 1)
    lua_pushlightuserdata(L, LuaHostKey.pointer)
    lua_pushinteger(L, lua_Integer(vm.hosts.count - 1))
    lua_rawset(L, -3)
    L.push("pattern")
    L.push(pattern)
    lua_rawset(L, -3)
    lua_rawgeti(L, mw_registryindex(), lua_Integer(vm.hostMetatableRef))
    lua_setmetatable(L, -2)
    return 1
}

/// `[host:]get(path, handler [, options])` and friends (upvalue 2 is the method), and
/// `[host:]route("GET|POST", path, handler [, options])` (upvalue 2 is nil). The options table
/// takes `auth` (true or false: this route needs authentication, or not) and `stream_body`
/// (true: the handler reads the body with `req:read` as it arrives).
private let luaAddRoute: LuaFunction = { L in
    addRoute(L!, fixedMethod: L!.string(at: mw_upvalueindex(2)))
}

/// The host a routing function was called on (`host:get(...)` passes it first) or nil for
/// the default host, and the position of the next argument; nil, with the error pushed, when
/// the first argument is a table that is not a host.
func routeHost(_ L: LuaThread, method: String) -> (HostID?, Int32)? {
    guard L.type(at: 1) == LUA_TTABLE else { return (nil, 1) }
    lua_pushlightuserdata(L, LuaHostKey.pointer)
    lua_rawget(L, 1)
    // The key can be found with pairs() and copied into any table: the index is checked.
    let index = mw_isinteger(L, -1) != 0 ? Int(mw_tointeger(L, -1, nil)) : -1
    mw_pop(L, 1)
    let vm = LuaVM.from(L)
    guard vm.hosts.indices.contains(index) else {
        L.push("moonwire.\(method): the first argument is not a host from moonwire.vhost")
        return nil
    }
    return (vm.hosts[index], 2)
}

/// Declares a route from the arguments of a routing function; see `luaAddRoute`.
func addRoute(_ L: LuaThread, fixedMethod: String?) -> Int32 {
    let method = fixedMethod?.lowercased() ?? "route"
    guard let (host, first) = routeHost(L, method: method) else { return LuaReturn.raise }
    var argument = first
    let name = (host == nil ? "moonwire." : "host:") + method
    guard let vm = LuaVM.checked(L, LuaAPI.routes[name] ?? LuaAPI.options) else { return LuaReturn.raise }
    var methods: [String] = []
    if let fixedMethod {
        methods = [fixedMethod]
    } else {
        guard L.type(at: argument) == LUA_TSTRING, let list = L.string(at: argument) else {
            return L.raise("\(name): expected methods like \"GET|POST\", got \(L.describe(at: argument))")
        }
        methods = list.split(separator: "|").map { String($0).trimmingCharacters(in: .whitespaces).uppercased() }
        argument += 1
    }
    guard L.type(at: argument) == LUA_TSTRING, let path = L.string(at: argument) else {
        return L.raise("\(name): expected a path pattern, got \(L.describe(at: argument))")
    }
    guard L.type(at: argument + 1) == LUA_TFUNCTION else {
        return L.raise("\(name): expected a handler function, got \(L.describe(at: argument + 1))")
    }
    var auth: Bool?
    var streamsBody = false
    let options = argument + 2
    if L.type(at: options) != LUA_TNONE && L.type(at: options) != LUA_TNIL {
        guard L.type(at: options) == LUA_TTABLE else { return L.raise("\(name): the options must be a table") }
        if let error = LuaSettingKeys.unknownKey(L, at: options, known: LuaSettingKeys.route) { return L.raise("\(name): \(error)") }
        switch readAuthOption(L, at: options) {
        case .success(let value): auth = value
        case .failure(let error): return L.raise("\(name): \(error.message)")
        }
        let type = L.rawField(options, "stream_body")
        streamsBody = type == LUA_TBOOLEAN && lua_toboolean(L, -1) != 0
        mw_pop(L, 1)
        guard type == LUA_TNIL || type == LUA_TBOOLEAN else { return L.raise("\(name): stream_body must be true or false") }
    }
    lua_pushvalue(L, argument + 1)
    let handler = luaL_ref(L, mw_registryindex())
    do {
        try vm.router.addRoute(host: host, methods: methods, path: path, handler: handler)
    } catch {
        luaL_unref(L, mw_registryindex(), handler)
        return L.raise("\(name): \(error)")
    }
    if let auth { vm.authentication.routes[handler] = auth }
    if streamsBody { vm.streamBodyRoutes.insert(handler) }
    vm.routePatterns[handler] = path
    return 0
}
