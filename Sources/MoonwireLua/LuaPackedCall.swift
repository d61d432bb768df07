// A function and its arguments kept in the registry until they run later (a timer's function,
// a spawned thread's), as one table `{fn, arg1, ...}`: one reference to hold, whatever the count.
import CLua

/// A registry reference to `{fn, args...}`.
struct LuaPackedCall {
    let reference: Int32

    /// Packs the values at stack positions `first...last` of `L` (the function first).
    init(_ L: LuaThread, from first: Int32, to last: Int32) {
        lua_createtable(L, last - first + 1, 0)
        for position in first...last {
            lua_pushvalue(L, position)
            lua_rawseti(L, -2, lua_Integer(position - first + 1))
        }
        reference = luaL_ref(L, mw_registryindex())
    }

    /// Pushes the function and its arguments onto `T` and returns the count of arguments.
    func push(on T: LuaThread) -> Int32 {
        lua_rawgeti(T, mw_registryindex(), lua_Integer(reference))
        let count = Int32(lua_rawlen(T, -1))
        for position in 0..<count { lua_rawgeti(T, -1 - position, lua_Integer(position + 1)) }
        lua_rotate(T, -count - 1, -1)
        mw_pop(T, 1)
        return count - 1
    }

    /// Lets the function and its arguments go.
    func release(in L: LuaThread) {
        luaL_unref(L, mw_registryindex(), reference)
    }
}
