// The handler timeout of the calls that wait (limits.handler_timeout). One sweep per VM, every
// tenth of a second while a call waits, ends those past their deadline, instead of a timer per
// call: scheduling and cancelling one on the loop's heap cost about 5,000 instructions, as
// much as a fifth of a proxied request, for a limit that does not need better than 0.1 s.
// Each deadline lives on its call alone, and the sweep looks at the VM's live calls: a
// dictionary of deadlines by call, written when a call waited and again when it ended, cost a
// proxied request about 400 instructions, the sweep's walk over a few dozen calls nothing.
//
// The sweep holds its VM strongly, not weakly: a weak reference, once formed, moves an object's
// reference count to a side table for the rest of its life, and every retain and release of
// the VM then took the slow path (about 500 instructions per proxied request). The cycle this
// makes (VM, sweep, VM) lasts only while the sweep runs: it stops within one interval of the
// last deadline going (each goes by its call's end or its own passing), and the loop's shutdown
// cancels it; a replaced generation is freed at most one interval after its last call.
import NIOCore

/// The sweep of a VM's waiting calls' deadlines (each is its call's `deadline`), while it runs.
struct LuaCallDeadlines {
    var sweep: RepeatedTask?

    /// How often the sweep looks: the timeout's precision.
    static let interval = TimeAmount.milliseconds(100)
}

extension LuaVM {
    /// Ends a waiting call that outlives the handler timeout, counted from `lastProgress`
    /// (the request's arrival, an event's first wait, the last piece a stream sent).
    func armDeadline(_ call: LuaCall) {
        guard call.deadline == nil, let eventLoop else { return }
        if call.lastProgress.uptimeNanoseconds == 0 { call.lastProgress = .now() }
        let deadline = call.lastProgress + .nanoseconds(Int64(settings.scriptLimits.handlerTimeout * 1e9))
        call.deadline = deadline
        guard deadlines.sweep == nil else { return }
        let vm = NIOLoopBound(self, eventLoop: eventLoop)
        deadlines.sweep = eventLoop.scheduleRepeatedTask(initialDelay: LuaCallDeadlines.interval, delay: LuaCallDeadlines.interval) { _ in
            vm.value.sweepDeadlines()
        }
    }

    /// Forgets a call's deadline: it returned, failed, or made progress.
    func disarmDeadline(_ call: LuaCall) {
        call.deadline = nil
    }

    private func sweepDeadlines() {
        let now = NIODeadline.now()
        let timeout = settings.scriptLimits.handlerTimeout
        for call in calls.live where call.deadline.map({ $0 <= now }) == true {
            call.deadline = nil
            advance(call, .failed(LuaScriptError(
                message: "\(call.event.name) timed out after \(timeout) seconds (limits.handler_timeout)", kind: .timeout)))
        }
        // Looked for after the failures: ending a call may have armed another's deadline.
        if !calls.live.contains(where: { $0.deadline != nil }) {
            deadlines.sweep?.cancel()
            deadlines.sweep = nil
        }
    }
}

