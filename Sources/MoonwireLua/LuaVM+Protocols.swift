// Events of TLS and HTTP/2 (OnSSLALPNSelect, OnSSLVerifyPeer, OnHTTP2BeforeAsyncRequest) and
// the preload links pushed with HTTP/2 answers (moonwire.push_preload / push_remove).
import CLua
import MoonwireCore
import NIOHTTP1

extension LuaVM {
    /// OnSSLALPNSelect(conn, protocols): a protocol the client offered, or nil (also when it
    /// fails: the server's preference applies).
    func selectApplicationProtocol(_ connection: ConnectionInfo, offered: [String]) -> String? {
        let result = runEvent(.onSSLALPNSelect, events.onALPNSelect) { T in
            pushConnection(connection, on: T)
            pushList(offered, on: T)
            return 2
        } results: { T, count in
            count > 0 && T.type(at: -count) == LUA_TSTRING ? T.string(at: -count) : nil
        }
        return (try? result?.get()) ?? nil
    }

    /// OnSSLVerifyPeer(conn, cert): anything but true, or an error, refuses the client
    /// certificate; the handshake waits while the hook does.
    func verifyPeer(_ connection: ConnectionInfo, certificate: PeerCertificate) -> DelegateAnswer<Bool> {
        ask(.onSSLVerifyPeer, events.onVerifyPeer) { T in
            pushConnection(connection, on: T)
            lua_createtable(T, 0, 6)
            for (name, value) in [
                ("subject", certificate.subject), ("issuer", certificate.issuer), ("serial", certificate.serial),
                ("pem", certificate.pem),
            ] {
                T.push(value)
                T.setField(-2, name)
            }
            lua_pushinteger(T, lua_Integer(certificate.notBefore))
            T.setField(-2, "not_before")
            lua_pushinteger(T, lua_Integer(certificate.notAfter))
            T.setField(-2, "not_after")
            return 2
        } decide: { T, count in
            count > 0 && T.type(at: -count) == LUA_TBOOLEAN && lua_toboolean(T, -count) != 0
        }
    }

    /// OnHTTP2BeforeAsyncRequest(req): true sends an HTTP/2 request to the worker VMs. The
    /// request arrives as a table of the fields `req` has before routing (no body, no
    /// params); nothing has answered it yet. An error keeps the request on its loop.
    func wantsWorker(_ request: HTTPRequest) -> Bool {
        guard events.onBeforeAsyncRequest != LUA_NOREF, request.version == "2" else { return false }
        let result = runEvent(.onHTTP2BeforeAsyncRequest, events.onBeforeAsyncRequest) { T in
            lua_createtable(T, 0, 10)
            for (name, value) in [
                ("method", request.method), ("path", request.path), ("uri", request.uri), ("version", request.version),
                ("scheme", request.scheme), ("host", request.host), ("remote_ip", request.connection.remoteIP),
            ] {
                T.push(value)
                T.setField(-2, name)
            }
            lua_pushinteger(T, lua_Integer(request.connection.remotePort))
            T.setField(-2, "remote_port")
            pushQueryTable(T, request.query)
            T.setField(-2, "query")
            pushHeaderTable(T, request.headers)
            T.setField(-2, "headers")
            return 1
        } results: { T, count in
            firstResultTruth(T, count) == true
        }
        return (try? result?.get()) ?? false
    }

    /// Whether a request without a body may be streamed: only to a stream_body handler that is
    /// not a proxy route (every proxy route streams its body; a handler finds `req:read`
    /// working). Without one, an HTTP/1.x request with no length or chunks streams nothing.
    var streamsBodylessRequests: Bool { streamBodyRoutes.count != proxyRoutes.count }

    /// Multipart form bodies stream to the upload stage (LuaVM+Uploads.swift), whatever their
    /// size: the upload limits bound them, not max_body_size, which bounds what is held in
    /// memory (their plain fields).
    func streamedBodyLimit(for head: HTTPRequestHead) -> Int? {
        if !streamsBodylessRequests, head.version.major == 1, !head.headers.contains(name: "content-length"),
            !head.headers.contains(name: "transfer-encoding")
        {
            return nil
        }
        if !streamBodyRoutes.isEmpty, let (host, path) = HTTPRequest.hostAndPath(of: head),
            case .matched(let handler, _) = router.match(host: host, method: head.method.rawValue, path: path).outcome,
            streamBodyRoutes.contains(handler)
        {
            return proxyRoute(handler)?.options.maxBodySize ?? settings.limits.maxBodySize
        }
        guard let type = head.headers.first(name: "content-type"), MultipartFormReader.isMultipartForm(type) else { return nil }
        return .max
    }

    /// The preload links of a request's path.
    func pushLinks(for request: HTTPRequest) -> [String] {
        preloadLinks[request.path] ?? []
    }

    private func pushList(_ items: [String], on T: LuaThread) {
        lua_createtable(T, Int32(items.count), 0)
        for (position, item) in items.enumerated() {
            T.push(item)
            lua_rawseti(T, -2, lua_Integer(position + 1))
        }
    }
}

/// `moonwire.push_preload(path, {links})`: HTTP/2 clients that allow push get these paths
/// pushed when they request `path` (sgcWebSockets' PushPromiseAddPreLoadLinks). While the
/// scripts load, so that every VM has the same links.
let luaPushPreload: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.pushPreload) else { return LuaReturn.raise }
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
    vm.preloadLinks[path] = links
    return 0
}

/// `moonwire.push_remove(path)`: stops pushing for `path` (sgcWebSockets' PushPromiseRemove).
let luaPushRemove: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.pushRemove) else { return LuaReturn.raise }
    guard let path = L.string(at: 1) else { return L.raise("moonwire.push_remove: expected a path") }
    vm.preloadLinks[path] = nil
    return 0
}
