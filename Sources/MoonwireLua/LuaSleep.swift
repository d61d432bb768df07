// moonwire.sleep: suspends the handler's coroutine and resumes it from an event loop timer,
// so a waiting handler costs no thread.
import CLua
import NIOCore

let luaSleep: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.sleep) else { return LuaReturn.raise }
    guard let seconds = L.number(at: 1), seconds >= 0, seconds.isFinite else {
        return L.raise("moonwire.sleep: expected a number of seconds >= 0, got \(L.describe(at: 1))")
    }
    guard lua_isyieldable(L) != 0, let call = vm.runningCall, call.thread == L, let loop = vm.eventLoop else {
        return L.raise("moonwire.sleep: cannot wait here (in a coroutine the script made, or under a metamethod)")
    }
    let boundVM = NIOLoopBound(vm, eventLoop: loop)
    let callID = call.id
    call.isWaiting = true
    call.sleeping = loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
        let vm = boundVM.value
        guard let call = vm.calls[callID] else { return }
        call.sleeping = nil
        vm.proceed(call, arguments: 0)
    }
    return LuaReturn.yield
}
