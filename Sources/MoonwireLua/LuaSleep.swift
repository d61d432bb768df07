// moonwire.sleep: suspends the calling coroutine and resumes it from an event loop timer, so
// a waiting call costs no thread.
import CLua
import NIOCore

let luaSleep: LuaFunction = { L in
    let L = L!
    guard let seconds = L.number(at: 1), seconds >= 0, seconds.isFinite else {
        return L.raise("moonwire.sleep: expected a number of seconds >= 0, got \(L.describe(at: 1))")
    }
    guard let waiter = LuaVM.waiter(L, LuaAPI.sleep) else { return LuaReturn.raise }
    let cancel = waiter.vm.runtime.clock.schedule(in: .nanoseconds(Int64(seconds * 1e9)), on: waiter.eventLoop) {
        waiter.resume { _ in 0 }
    }
    waiter.onAbandon(cancel)
    return LuaReturn.yield
}
