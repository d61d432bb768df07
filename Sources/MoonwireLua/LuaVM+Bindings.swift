// OnBeforeBinding(bindings): the script sees the listeners about to be bound, as a list of
// `{host=, port=, tls=, backlog=}`, and may edit it in place (or return a new list): add one,
// remove one, change a port. It runs at start and at every moonwire.restart(), through the
// door like any event, and may wait. `tls` is `true` for a declared TLS listener (its
// certificate stays as declared), `false` for a plain one, or a `{cert=, key=, ...}` table as in
// moonwire.listen{}.
import CLua
import MoonwireCore

/// OnBeforeBinding failed or returned a list that cannot be bound.
public struct LuaBindingsError: Error, CustomStringConvertible {
    public let description: String
}

/// What OnBeforeBinding made of the listeners, or why it failed.
enum LuaBindingsOutcome {
    case listeners([Listener])
    case failed(String)
}

extension LuaVM {
    /// Calls OnBeforeBinding with `listeners`; `done` gets the edited list (the same list when
    /// the scripts define no OnBeforeBinding), now or once the event has waited.
    func beforeBinding(_ listeners: [Listener], done: @escaping (LuaBindingsOutcome) -> Void) {
        guard events.onBeforeBinding != LUA_NOREF else { return done(.listeners(listeners)) }
        var reference = LUA_NOREF
        var declaredTLS: [UnsafeRawPointer: TLSSettings] = [:]
        startEvent(.onBeforeBinding, events.onBeforeBinding) { T in
            lua_createtable(T, Int32(listeners.count), 0)
            for (position, listener) in listeners.enumerated() {
                lua_createtable(T, 0, 4)
                T.push(listener.host)
                T.setField(-2, "host")
                lua_pushinteger(T, lua_Integer(listener.port))
                T.setField(-2, "port")
                lua_pushboolean(T, listener.tls == nil ? 0 : 1)
                T.setField(-2, "tls")
                lua_pushinteger(T, lua_Integer(listener.backlog))
                T.setField(-2, "backlog")
                if let tls = listener.tls, let entry = lua_topointer(T, -1) { declaredTLS[entry] = tls }
                lua_rawseti(T, -2, lua_Integer(position + 1))
            }
            lua_pushvalue(T, -1)
            reference = luaL_ref(T, mw_registryindex())
            return 1
        } then: { [unowned self] result in
            defer { luaL_unref(self.L, mw_registryindex(), reference) }
            switch result {
            case .failure(let error):
                done(.failed("OnBeforeBinding: \(error.message)"))
            case .success(let (T, count)):
                if count > 0, lua_type(T, -count) == LUA_TTABLE {
                    lua_pushvalue(T, -count)
                } else {
                    lua_rawgeti(T, mw_registryindex(), lua_Integer(reference))
                }
                defer { mw_pop(T, 1) }
                done(Self.readBindings(T, declaredTLS: declaredTLS))
            }
        }
    }

    /// Reads the bindings list on top of `T`.
    private static func readBindings(_ T: LuaThread, declaredTLS: [UnsafeRawPointer: TLSSettings]) -> LuaBindingsOutcome {
        var listeners: [Listener] = []
        let count = lua_rawlen(T, -1)
        guard count > 0 else { return .listeners([]) }
        for position in 1...count {
            lua_rawgeti(T, -1, lua_Integer(position))
            defer { mw_pop(T, 1) }
            let place = "OnBeforeBinding: bindings[\(position)]"
            guard T.type(at: -1) == LUA_TTABLE else { return .failed("\(place) must be a table {host=, port=, tls=}") }
            if let error = LuaSettingKeys.unknownKey(T, at: -1, known: LuaSettingKeys.binding) { return .failed("\(place): \(error)") }
            T.rawField(-1, "host")
            let host = T.type(at: -1) == LUA_TNIL ? "127.0.0.1" : T.string(at: -1)
            mw_pop(T, 1)
            guard let host, !host.isEmpty else { return .failed("\(place).host must be an address") }
            T.rawField(-1, "port")
            let port = T.number(at: -1)
            mw_pop(T, 1)
            guard let port, (0...65535).contains(port), port.rounded() == port else {
                return .failed("\(place).port must be a number 0...65535")
            }
            var listener = Listener(host: host, port: Int(port))
            T.rawField(-1, "backlog")
            let backlog = T.type(at: -1) == LUA_TNIL ? Double(listener.backlog) : T.number(at: -1)
            mw_pop(T, 1)
            guard let backlog, (1...65535).contains(backlog), backlog.rounded() == backlog else {
                return .failed("\(place).backlog must be a whole number 1...65535")
            }
            listener.backlog = Int(backlog)
            T.rawField(-1, "tls")
            defer { mw_pop(T, 1) }
            switch T.type(at: -1) {
            case LUA_TNIL:
                break
            case LUA_TBOOLEAN where lua_toboolean(T, -1) == 0:
                break
            case LUA_TBOOLEAN:
                guard let entry = lua_topointer(T, -2), let tls = declaredTLS[entry] else {
                    return .failed("\(place).tls = true keeps a declared listener's TLS; a new one needs tls = {cert=, key=}")
                }
                listener.tls = tls
            default:
                switch readTLS(T, at: -1) {
                case .success(let tls): listener.tls = tls
                case .failure(let error): return .failed("\(place).tls: \(error.text)")
                }
            }
            listeners.append(listener)
        }
        return .listeners(listeners)
    }
}

/// `moonwire.restart()`: reads the scripts again, runs OnBeforeBinding, binds the listeners that
/// are new and closes those that went away; open connections stay (asynchronously, as
/// moonwire.reload()). Returns false where no server runs.
let luaRestart: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.restart) else { return LuaReturn.raise }
    lua_pushboolean(L, vm.runtime.requestRestart() ? 1 : 0)
    return 1
}
