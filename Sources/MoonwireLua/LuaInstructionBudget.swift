// The instruction budget. Lua's count hook makes the VM stop before every instruction to count
// it, which costs about as much as the instruction itself, so a thread runs without the hook
// until its code has used a tick of CPU (10 ms, CLuaTick): the tick arms the hook, which from
// then on charges instructions to the running call (or to the main thread's work) and ends
// the call when its budget is spent. The C hook raises the error, so no longjmp crosses this
// Swift frame.
import CLua
import CLuaTick

extension LuaVM {
    /// Instructions between two hook calls once armed: small enough to stop a loop promptly,
    /// large enough that the hook's own cost stays out of the profile.
    static let hookInterval: Int32 = 1000

    /// Registers a new state's main thread with the calling thread's CPU tick; nil when the
    /// thread has no tick (no CPU timer, or too many VMs on it), and the budget is then armed
    /// for good.
    static func joinTick(_ main: LuaThread) -> OpaquePointer? {
        guard let ticker = mw_tick_thread(mw_armbudget), mw_tick_addvm(ticker, main) != 0 else { return nil }
        return ticker
    }

    /// Moves the VM to the CPU tick of the calling thread: a generation loaded on a reload
    /// thread is armed by its event loop's ticks once it serves there.
    func adopt() {
        leaveTick()
        ticker = Self.joinTick(L)
        applyInstructionLimit()
    }

    /// Stops the tick from arming this VM. `lua_close` then runs the scripts' __gc metamethods
    /// with the budget armed, since no tick reaches them any more.
    func leaveTick() {
        guard let ticker else { return }
        mw_armbudget(L)
        mw_tick_removevm(ticker, L)
    }

    /// Applies `limits.instructions` to the main thread once its work is done: without a tick
    /// the hook stays armed (reset from the every-instruction mode a spent budget leaves);
    /// with one it comes off until the next tick; with no budget it is off.
    func applyInstructionLimit() {
        let limited = settings.scriptLimits.instructions > 0
        space.pointee.hook_interval = limited ? Self.hookInterval : 0
        if limited && ticker == nil {
            mw_sethook(L, Self.hookInterval)
        } else {
            mw_disarmbudget(L)
        }
    }

    /// Takes the hook off a coroutine whose call ended or that is new (it inherits the main
    /// thread's), unless the budget is armed for good.
    func disarmBudget(_ thread: LuaThread) {
        if ticker != nil { mw_disarmbudget(thread) }
    }

    /// Makes `thread` the coroutine the tick arms (nil: none), returning the one it replaces.
    @discardableResult
    func swapRunningThread(_ thread: LuaThread?) -> LuaThread? {
        guard let ticker else { return nil }
        return mw_tick_swaprunning(ticker, thread)
    }

    /// Returns false, with the error message pushed, once the budget is spent.
    func chargeInstructions(on thread: LuaThread) -> Bool {
        // A coroutine armed while the scripts loaded keeps its hook if they then turned the
        // budget off.
        guard settings.scriptLimits.instructions > 0 else {
            mw_sethook(thread, 0)
            return true
        }
        let interval = Int(Self.hookInterval)
        if let call = runningCall {
            call.instructionsLeft -= interval
            guard call.instructionsLeft < 0 else { return true }
            call.fault = .cpuBudget
        } else {
            mainInstructionsLeft -= interval
            guard mainInstructionsLeft < 0 else { return true }
        }
        // From now on the hook fires on every instruction of this thread, so a loop that
        // catches the error with pcall is interrupted again the moment it leaves the pcall.
        mw_sethook(thread, 1)
        thread.push("exceeded the CPU budget of \(settings.scriptLimits.instructions) instructions at \(thread.currentLocation())")
        return false
    }
}

/// The `check` function of the VM's mw_VMSpace.
let luaInstructionCheck: @convention(c) (LuaThread?) -> Int32 = { L in
    LuaVM.from(L!).chargeInstructions(on: L!) ? 0 : 1
}
