// moonwire.spawn: light threads on the caller's loop, so that one handler can wait on several
// things at once (three upstreams fetched together). A thread is a call of its own, started on
// the next turn of the loop, in the context of the code that spawned it, with its own CPU
// budget; `thread:wait()` returns its results, or nil and the error when it failed. A thread
// may outlive its spawner; the request it was spawned for is answered when its handler ends.
import CLua
import MoonwireCore

/// A thread moonwire.spawn started, until its results are taken or its handle is collected.
final class LuaSpawnedThread {
    enum State {
        case running
        /// Its results, in a registry table with `n`.
        case returned(Int32)
        case failed(String)
    }

    var state = State.running
    /// The call waiting in `thread:wait()`.
    var waiter: LuaWaiter?
    /// The coroutine of the thread's own call while it runs: it cannot wait for itself.
    var coroutine: LuaThread?
    /// The handle was collected: nobody can wait any more.
    var orphaned = false
}

/// The threads of a VM by id.
struct LuaThreadTable {
    var byID: [Int: LuaSpawnedThread] = [:]
    var lastID = 0

    /// The most threads a VM keeps at once.
    static let limit = 10_000
}

let luaThreadKind = LuaHandleKind(name: "moonwire.thread", methods: [("wait", luaThreadWait)], collected: luaThreadCollected)

extension LuaVM {
    /// Runs the function and arguments packed at `packed` as thread `id`, in `event`'s context.
    fileprivate func startThread(_ id: Int, packed: LuaPackedCall, as event: LuaEvent) {
        guard let thread = threads.byID[id] else { return packed.release(in: L) }
        startCall(event, isThread: true, push: { T in
            thread.coroutine = T
            defer { packed.release(in: T) }
            return packed.push(on: T)
        }, then: { [self] result in
            threadEnded(id, result)
        })
    }

    private func threadEnded(_ id: Int, _ result: Result<(LuaThread, Int32), LuaScriptError>) {
        guard let thread = threads.byID[id] else { return }
        thread.coroutine = nil
        switch result {
        case .success(let (T, count)):
            guard !thread.orphaned else { return forgetThread(id) }
            lua_createtable(T, count, 1)
            lua_rotate(T, -count - 1, 1)
            for position in stride(from: count, through: 1, by: -1) { lua_rawseti(T, -position - 1, lua_Integer(position)) }
            lua_pushinteger(T, lua_Integer(count))
            lua_setfield(T, -2, "n")
            thread.state = .returned(luaL_ref(T, mw_registryindex()))
        case .failure(let error):
            guard !thread.orphaned else { return forgetThread(id) }
            thread.state = .failed(error.message)
        }
        if let waiter = thread.waiter {
            thread.waiter = nil
            waiter.resume { [self] T in takeResults(of: id, on: T) }
        }
    }

    /// Pushes a finished thread's results (or nil and its error) and returns their count.
    fileprivate func takeResults(of id: Int, on T: LuaThread) -> Int32 {
        guard let thread = threads.byID[id] else { return 0 }
        switch thread.state {
        case .returned(let packed):
            threads.byID[id] = nil
            lua_rawgeti(T, mw_registryindex(), lua_Integer(packed))
            luaL_unref(T, mw_registryindex(), packed)
            lua_getfield(T, -1, "n")
            let count = Int32(lua_tointegerx(T, -1, nil))
            mw_pop(T, 1)
            for position in 0..<count { lua_rawgeti(T, -1 - position, lua_Integer(position + 1)) }
            lua_rotate(T, -count - 1, -1)
            mw_pop(T, 1)
            return count
        case .failed(let message):
            threads.byID[id] = nil
            lua_pushnil(T)
            T.push(message)
            return 2
        case .running:
            lua_pushnil(T)
            T.push("thread:wait: the thread's results were already taken")
            return 2
        }
    }

    fileprivate func forgetThread(_ id: Int) {
        guard let thread = threads.byID.removeValue(forKey: id) else { return }
        if case .returned(let packed) = thread.state { luaL_unref(L, mw_registryindex(), packed) }
    }
}

/// `moonwire.spawn(fn, ...)` → a thread handle.
let luaSpawn: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.spawn), let event = vm.runningEvent else { return LuaReturn.raise }
    guard L.type(at: 1) == LUA_TFUNCTION else {
        return L.raise("moonwire.spawn: expected a function, got \(L.describe(at: 1))")
    }
    guard let eventLoop = vm.eventLoop else { return L.raise("moonwire.spawn: no event loop here") }
    guard vm.threads.byID.count < LuaThreadTable.limit else {
        lua_pushnil(L)
        L.push("moonwire.spawn: too many threads (\(LuaThreadTable.limit))")
        return 2
    }
    let packed = LuaPackedCall(L, from: 1, to: lua_gettop(L))
    vm.threads.lastID += 1
    let id = vm.threads.lastID
    vm.threads.byID[id] = LuaSpawnedThread()
    eventLoop.assumeIsolated().execute { vm.startThread(id, packed: packed, as: event) }
    luaThreadKind.push(id, on: L)
    return 1
}

/// `thread:wait()`: the thread's results, at once when it has ended, or when it ends.
private let luaThreadWait: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.threadWait) else { return LuaReturn.raise }
    guard let id = luaThreadKind.id(at: 1, on: L) else {
        return L.raise("thread:wait: call it on a thread moonwire.spawn returned, with a colon")
    }
    guard let thread = vm.threads.byID[id] else {
        lua_pushnil(L)
        L.push("thread:wait: the thread's results were already taken")
        return 2
    }
    guard case .running = thread.state else { return vm.takeResults(of: id, on: L) }
    guard thread.coroutine != L else { return L.raise("thread:wait: a thread cannot wait for itself") }
    guard thread.waiter == nil else { return L.raise("thread:wait: another call already waits for this thread") }
    guard let waiter = LuaVM.waiter(L, LuaAPI.threadWait) else { return LuaReturn.raise }
    thread.waiter = waiter
    waiter.onAbandon { vm.threads.byID[id]?.waiter = nil }
    return LuaReturn.yield
}

/// A thread handle was collected: its results, if it has any, go; a running thread finishes
/// with nobody to take them.
private let luaThreadCollected: LuaFunction = { L in
    let L = L!
    guard let id = luaThreadKind.id(at: 1, on: L) else { return 0 }
    let vm = LuaVM.from(L)
    guard let thread = vm.threads.byID[id] else { return 0 }
    if case .running = thread.state {
        thread.orphaned = true
    } else {
        vm.forgetThread(id)
    }
    return 0
}
