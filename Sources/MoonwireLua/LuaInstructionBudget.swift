// The count hook's Swift half: charges instructions to the running call (or to the main
// thread's work) and ends the call when its budget is spent. The C hook raises the error,
// so no longjmp crosses this Swift frame.
import CLua

extension LuaVM {
    /// Instructions between two hook calls: small enough to stop a loop promptly, large
    /// enough that the hook's own cost stays out of the profile.
    static let hookInterval: Int32 = 1000

    /// Sets the count hook on the main thread (coroutines inherit it), or removes it when
    /// `limits.instructions` is 0: no budget, and no hook cost on any instruction.
    func armInstructionHook() {
        if settings.scriptLimits.instructions > 0 {
            mw_sethook(L, Self.hookInterval)
        } else {
            mw_sethook(L, 0)
        }
    }

    /// Returns false, with the error message pushed, once the budget is spent.
    func chargeInstructions(on thread: LuaThread) -> Bool {
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
