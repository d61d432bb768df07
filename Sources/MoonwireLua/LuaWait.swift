// The one way a Lua-facing function waits: it takes the running call as a waiter, starts
// whatever it waits for (a timer, an outbound connection, another thread), and yields. When the
// answer arrives on the VM's loop, the waiter resumes the call with the values it pushes, as
// the results of the function that waited. Whatever resumes a call comes back through the
// door (`proceed`), so the instruction budget counts only the time Lua code runs.
import CLua
import MoonwireCore
import NIOCore

/// A call suspended in a Lua-facing function, and the way back into it. Confined to its VM's
/// loop, like the VM.
struct LuaWaiter {
    let vm: LuaVM
    let callID: Int
    /// Which of the call's waits this is: an answer that comes after the call has gone on
    /// (to another wait) finds a later serial and resumes nothing.
    let serial: Int

    /// The loop the answer must arrive on.
    var eventLoop: EventLoop { vm.eventLoop! }

    /// Resumes the call with the values `push` leaves on its coroutine (their count is what it
    /// returns). Does nothing when the call has ended meanwhile (its time ran out, its
    /// connection closed). A function that answers before it yielded (a future already
    /// failed) is resumed on the next turn of the loop.
    func resume(_ push: @escaping (LuaThread) -> Int32) {
        guard !resumeNow(push) else { return }
        let waiter = self
        let later = UnsafeTransfer(push)
        vm.eventLoop?.assumeIsolated().execute { waiter.resume(later.value) }
    }

    /// Resumes the call with the values `push` leaves when it is suspended in this wait, or
    /// does nothing when it has ended meanwhile; false, with nothing pushed, when it has not
    /// yielded yet (`resume(_:)` then tries again on the next turn). `push` does not escape, so
    /// it may borrow an answer that only lives as long as this call.
    func resumeNow(_ push: (LuaThread) -> Int32) -> Bool {
        guard let call = vm.calls[callID], call.waits == serial else { return true }
        guard call.isSuspended else { return false }
        call.cancelWait = nil
        vm.proceed(call, arguments: push(call.thread))
        return true
    }

    /// Resumes the call with `nil, message`: a failure the script reads as a value.
    func resume(failure message: String) {
        resume { T in
            lua_pushnil(T)
            T.push(message)
            return 2
        }
    }

    /// Sets what to cancel when the call ends before its answer (an outbound request, a timer).
    func onAbandon(_ cancel: @escaping () -> Void) {
        guard let call = vm.calls[callID], call.waits == serial else { return }
        call.cancelWait = cancel
    }
}

extension LuaVM {
    /// The running call as a waiter, when `function` may run and wait here: its context allows
    /// it, its event can wait, and it is called from the call's own coroutine (not from a
    /// coroutine the script made, or under a metamethod). Nil with the error pushed
    /// otherwise. The binding must return `LuaReturn.yield` after taking one.
    static func waiter(_ L: LuaThread, _ function: LuaAPIFunction) -> LuaWaiter? {
        guard let vm = checked(L, function), let call = vm.runningCall else { return nil }
        guard call.event.canWait, vm.eventLoop != nil else {
            L.push("\(function.name) cannot wait in \(call.event.name): it must answer at once")
            return nil
        }
        guard lua_isyieldable(L) != 0, call.thread == L else {
            L.push("\(function.name) cannot wait here (in a coroutine the script made, or under a metamethod; use moonwire.spawn)")
            return nil
        }
        call.isWaiting = true
        call.waits &+= 1
        return LuaWaiter(vm: vm, callID: call.id, serial: call.waits)
    }
}
