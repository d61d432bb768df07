// Events of TLS and HTTP/2 (OnSSLALPNSelect, OnSSLVerifyPeer, OnHTTP2BeforeAsyncRequest) and
// the preload links pushed with HTTP/2 answers (moonwire.push_preload / push_remove).
import CLua
import MoonwireCore

extension LuaVM {
    /// OnSSLALPNSelect(conn, protocols): a protocol the client offered, or nil.
    func selectApplicationProtocol(_ connection: ConnectionInfo, offered: [String]) -> String? {
        guard events.onALPNSelect != LUA_NOREF else { return nil }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onALPNSelect))
        pushConnection(connection)
        pushList(offered)
        guard (try? protectedCall(arguments: 2, results: 1)) != nil else {
            logger.error("OnSSLALPNSelect failed; the server's preference applies")
            return nil
        }
        defer { mw_pop(L, 1) }
        return L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
    }

    /// OnSSLVerifyPeer(conn, cert): false (or an error) refuses the client certificate.
    func verifyPeer(_ connection: ConnectionInfo, certificate: PeerCertificate) -> Bool {
        guard events.onVerifyPeer != LUA_NOREF else { return true }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onVerifyPeer))
        pushConnection(connection)
        lua_createtable(L, 0, 6)
        for (name, value) in [
            ("subject", certificate.subject), ("issuer", certificate.issuer), ("serial", certificate.serial),
            ("pem", certificate.pem),
        ] {
            L.push(value)
            L.setField(-2, name)
        }
        lua_pushinteger(L, lua_Integer(certificate.notBefore))
        L.setField(-2, "not_before")
        lua_pushinteger(L, lua_Integer(certificate.notAfter))
        L.setField(-2, "not_after")
        return callEvent(named: "OnSSLVerifyPeer", arguments: 2) == true
    }

    /// OnHTTP2BeforeAsyncRequest(req): true sends an HTTP/2 request to the worker VMs. The
    /// request arrives as a table of the fields `req` has before routing (no body, no
    /// params); nothing has answered it yet.
    func wantsWorker(_ request: HTTPRequest) -> Bool {
        guard events.onBeforeAsyncRequest != LUA_NOREF, request.version == "2" else { return false }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onBeforeAsyncRequest))
        lua_createtable(L, 0, 10)
        for (name, value) in [
            ("method", request.method), ("path", request.path), ("uri", request.uri), ("version", request.version),
            ("scheme", request.scheme), ("host", request.host), ("remote_ip", request.connection.remoteIP),
        ] {
            L.push(value)
            L.setField(-2, name)
        }
        lua_pushinteger(L, lua_Integer(request.connection.remotePort))
        L.setField(-2, "remote_port")
        pushQueryTable(L, request.query)
        L.setField(-2, "query")
        pushHeaderTable(L, request.headers)
        L.setField(-2, "headers")
        return callEvent(named: "OnHTTP2BeforeAsyncRequest", arguments: 1) == true
    }

    /// The preload links of a request's path.
    func pushLinks(for request: HTTPRequest) -> [String] {
        preloadLinks[request.path] ?? []
    }

    private func pushList(_ items: [String]) {
        lua_createtable(L, Int32(items.count), 0)
        for (position, item) in items.enumerated() {
            L.push(item)
            lua_rawseti(L, -2, lua_Integer(position + 1))
        }
    }
}

/// `moonwire.push_preload(path, {links})`: HTTP/2 clients that allow push get these paths
/// pushed when they request `path` (the seeds' PushPromiseAddPreLoadLinks).
let luaPushPreload: LuaFunction = { L in
    let L = L!
    guard let path = L.string(at: 1), path.hasPrefix("/") else {
        return L.raise("moonwire.push_preload: expected a path starting with /")
    }
    guard L.type(at: 2) == LUA_TTABLE else { return L.raise("moonwire.push_preload: expected a list of paths to push") }
    var links: [String] = []
    for position in 1...max(1, Int(lua_rawlen(L, 2))) where lua_rawlen(L, 2) > 0 {
        lua_rawgeti(L, 2, lua_Integer(position))
        let link = L.string(at: -1)
        mw_pop(L, 1)
        guard let link, link.hasPrefix("/") else {
            return L.raise("moonwire.push_preload: links must be paths starting with /")
        }
        links.append(link)
    }
    LuaVM.from(L).preloadLinks[path] = links
    return 0
}

/// `moonwire.push_remove(path)`: stops pushing for `path` (the seeds' PushPromiseRemove).
let luaPushRemove: LuaFunction = { L in
    let L = L!
    guard let path = L.string(at: 1) else { return L.raise("moonwire.push_remove: expected a path") }
    LuaVM.from(L).preloadLinks[path] = nil
    return 0
}
