// moonwire.timer and moonwire.every. A timer's function runs as a call of its own (event
// "a timer"), under the CPU budget, and may wait. `every` never overlaps itself: its next run is
// scheduled when the previous one ended. Timers made while the scripts load are kept until the
// generation starts serving: then they run on the primary loop only, or on every loop with
// `{every_loop = true}`. A replaced generation's timers stop after their current run.
import CLua
import MoonwireCore
import NIOCore

/// A timer of a VM, with the function and arguments it runs.
final class LuaTimer {
    let id: Int
    let packed: LuaPackedCall
    let delay: Double
    /// Seconds between the end of a run and the next; nil for a single run.
    let interval: Double?
    let everyLoop: Bool
    /// Cancels the scheduled run.
    var scheduled: (() -> Void)?
    var running = false
    var cancelled = false

    init(id: Int, packed: LuaPackedCall, delay: Double, interval: Double?, everyLoop: Bool) {
        self.id = id
        self.packed = packed
        self.delay = delay
        self.interval = interval
        self.everyLoop = everyLoop
    }
}

/// The timers of a VM, and whether they run yet.
struct LuaTimerTable {
    var byID: [Int: LuaTimer] = [:]
    var lastID = 0
    /// The generation serves: new timers start at once. Before that (while the scripts load)
    /// they wait for `startTimers`.
    var started = false
    /// A replaced generation's timers: none starts again.
    var stopped = false

    /// The most timers a VM keeps at once.
    static let limit = 10_000
}

let luaTimerKind = LuaHandleKind(name: "moonwire.timer", methods: [("cancel", luaTimerCancel)], collected: nil)

extension LuaVM {
    /// Starts the timers the scripts made while loading: all of them on the primary loop, only
    /// those made with `{every_loop = true}` elsewhere (worker VMs run none).
    func startTimers(primary: Bool) {
        timers.started = true
        for timer in timers.byID.values.sorted(by: { $0.id < $1.id }) {
            if (primary && !isWorker) || (timer.everyLoop && !isWorker) {
                schedule(timer, after: timer.delay)
            } else {
                remove(timer)
            }
        }
    }

    /// Stops every timer of a replaced generation; runs in progress finish.
    func stopTimers() {
        timers.stopped = true
        for timer in timers.byID.values where !timer.running { remove(timer) }
    }

    fileprivate func schedule(_ timer: LuaTimer, after seconds: Double) {
        guard let eventLoop, !timers.stopped else { return remove(timer) }
        let id = timer.id
        // The VM held strongly, as everywhere a script's work waits on it: a weak reference
        // would put each of the VM's retains on the slow path for its life (LuaCallDeadlines
        // says why), about 700 instructions of a proxied request. `remove` cancels it, and a
        // replaced generation's timers are removed (`stopTimers`).
        timer.scheduled = runtime.clock.schedule(in: .nanoseconds(Int64(seconds * 1e9)), on: eventLoop) { [self] in
            fire(id)
        }
    }

    private func fire(_ id: Int) {
        guard let timer = timers.byID[id], !timer.cancelled else { return }
        timer.scheduled = nil
        timer.running = true
        let packed = timer.packed
        startCall(.timer, push: { T in packed.push(on: T) }, then: { [self] _ in
            timerRan(id)
        })
    }

    /// A run ended (its error, if any, is logged and reported): `every` goes on.
    private func timerRan(_ id: Int) {
        guard let timer = timers.byID[id] else { return }
        timer.running = false
        guard let interval = timer.interval, !timer.cancelled, !timers.stopped else { return remove(timer) }
        schedule(timer, after: interval)
    }

    fileprivate func remove(_ timer: LuaTimer) {
        timer.cancelled = true
        timer.scheduled?()
        timer.scheduled = nil
        guard timers.byID.removeValue(forKey: timer.id) != nil else { return }
        timer.packed.release(in: L)
    }

    /// Cancels a timer; false when it already ran (a single one) or was cancelled.
    fileprivate func cancel(_ id: Int) -> Bool {
        guard let timer = timers.byID[id], !timer.cancelled else { return false }
        timer.cancelled = true
        if !timer.running { remove(timer) }
        return true
    }

    fileprivate func makeTimer(delay: Double, interval: Double?, everyLoop: Bool, packed: LuaPackedCall) -> LuaTimer {
        timers.lastID += 1
        let timer = LuaTimer(id: timers.lastID, packed: packed, delay: delay, interval: interval, everyLoop: everyLoop)
        timers.byID[timer.id] = timer
        if timers.started { schedule(timer, after: delay) }
        return timer
    }
}

/// `moonwire.timer(delay, fn, ...)`.
let luaTimer: LuaFunction = { L in makeTimer(L!, LuaAPI.timer, repeating: false) }

/// `moonwire.every(interval, fn, ...)`.
let luaEvery: LuaFunction = { L in makeTimer(L!, LuaAPI.every, repeating: true) }

/// Makes a timer from `(seconds, fn, ...[, {every_loop = true}])`: a last argument that is a
/// table with an `every_loop` field is the options, not an argument for `fn`.
private func makeTimer(_ L: LuaThread, _ function: LuaAPIFunction, repeating: Bool) -> Int32 {
    guard let vm = LuaVM.checked(L, function) else { return LuaReturn.raise }
    guard let seconds = L.number(at: 1), seconds.isFinite, repeating ? seconds > 0 : seconds >= 0 else {
        return L.raise("\(function.name): expected a number of seconds \(repeating ? "> 0" : ">= 0"), got \(L.describe(at: 1))")
    }
    guard L.type(at: 2) == LUA_TFUNCTION else {
        return L.raise("\(function.name): expected a function as the second argument, got \(L.describe(at: 2))")
    }
    var top = lua_gettop(L)
    var everyLoop = false
    if top > 2, L.type(at: top) == LUA_TTABLE {
        let isOptions = L.rawField(top, "every_loop") != LUA_TNIL
        everyLoop = lua_toboolean(L, -1) != 0
        mw_pop(L, 1)
        if isOptions {
            top -= 1
            lua_settop(L, top)
        }
    }
    guard vm.timers.byID.count < LuaTimerTable.limit else {
        lua_pushnil(L)
        L.push("\(function.name): too many timers (\(LuaTimerTable.limit))")
        return 2
    }
    let packed = LuaPackedCall(L, from: 2, to: top)
    let timer = vm.makeTimer(delay: seconds, interval: repeating ? seconds : nil, everyLoop: everyLoop, packed: packed)
    luaTimerKind.push(timer.id, on: L)
    return 1
}

/// `handle:cancel()`: true when the timer will not run again.
private let luaTimerCancel: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.timerCancel) else { return LuaReturn.raise }
    guard let id = luaTimerKind.id(at: 1, on: L) else {
        return L.raise("timer:cancel: call it on a timer handle, with a colon")
    }
    lua_pushboolean(L, vm.cancel(id) ? 1 : 0)
    return 1
}
