// Handles: small full userdata that carry the id of something Swift keeps for a VM (a timer, a
// thread moonwire.spawn started); req.session tables use the same kind of metatable. The object itself lives in Swift, found by id, so a handle
// that outlives it finds nothing instead of freed memory; each kind has its own metatable,
// named so that a handle of one kind is never taken for another.
import CLua

/// A kind of handle: its metatable's name and its methods.
struct LuaHandleKind {
    /// The registry name of the metatable ("moonwire.timer"), also what `tostring` shows.
    let name: String
    let methods: [(String, LuaFunction)]
    /// Runs when the collector frees a handle (the id is at index 1); nil for none.
    let collected: LuaFunction?

    /// Creates the kind's metatable in the registry (once per VM).
    func install(in L: LuaThread) {
        luaL_newmetatable(L, name)
        lua_createtable(L, 0, Int32(methods.count))
        for (methodName, function) in methods { L.setFunction(methodName, function) }
        L.setField(-2, "__index")
        if let collected { L.setFunction("__gc", collected) }
        L.push(name)
        L.setField(-2, "__name")
        mw_pop(L, 1)
    }

    /// Pushes a new handle for `id`.
    func push(_ id: Int, on L: LuaThread) {
        let storage = lua_newuserdatauv(L, MemoryLayout<Int>.size, 0)!
        storage.storeBytes(of: id, as: Int.self)
        luaL_setmetatable(L, name)
    }

    /// The id of the handle at `index`, or nil when the value is not a handle of this kind.
    func id(at index: Int32, on L: LuaThread) -> Int? {
        guard let storage = luaL_testudata(L, index, name) else { return nil }
        return storage.load(as: Int.self)
    }
}
