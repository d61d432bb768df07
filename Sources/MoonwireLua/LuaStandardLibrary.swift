// The standard library as a server needs it: everything stays, but os.exit raises an error
// instead of ending the process for every client, coroutines start with the instruction
// budget armed (LuaInstructionBudget), and in development mode the calls that block an event
// loop log a warning where they are made.
import CLua

extension LuaVM {
    func installSafeStandardLibrary() {
        lua_getglobal(L, "os")
        L.setFunction("exit", luaBlockedExit)
        mw_pop(L, 1)
        lua_getglobal(L, "coroutine")
        mw_armcoroutinefunction(L, "create")
        mw_armcoroutinefunction(L, "wrap")
        mw_pop(L, 1)
        guard developmentMode else { return }
        do {
            try load(source: LuaPrelude.blockingCallWarnings, name: "moonwire.dev")
            try runChunk(arguments: 0)
        } catch {
            logger.error("cannot install development warnings", metadata: ["error": "\(error)"])
        }
    }
}

private let luaBlockedExit: LuaFunction = { L in
    let L = L!
    LuaVM.from(L).faults.recordExitCall()
    return L.raise("os.exit is disabled: it would stop the server for every client (raise an error to fail this request)")
}

/// `moonwire.stats()`: fault counters of the whole server and this VM's memory.
let luaStats: LuaFunction = { L in
    let L = L!
    let vm = LuaVM.from(L)
    lua_createtable(L, 0, 8)
    for (name, value) in vm.faults.snapshot {
        lua_pushinteger(L, lua_Integer(value))
        L.setField(-2, name)
    }
    lua_pushinteger(L, lua_Integer(vm.memoryInUse))
    L.setField(-2, "memory_used")
    lua_pushinteger(L, lua_Integer(vm.space.pointee.limit))
    L.setField(-2, "memory_limit")
    lua_pushinteger(L, lua_Integer(vm.calls.count))
    L.setField(-2, "active_calls")
    return 1
}
