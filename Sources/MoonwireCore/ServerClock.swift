// The one clock that sessions, rate limits, shared-store TTLs and script timers read. It is the
// real monotonic clock moved forward by an offset that only `moonwire test` changes
// (`t.advance`): a test of a 30-minute session timeout then runs in milliseconds, through the
// same code a server runs. Timers scheduled on it fire at their real time or as soon as an
// advance takes the clock past their deadline, whichever comes first.
import NIOConcurrencyHelpers
import NIOCore

/// Monotonic time plus an offset, and tasks due at a time on it.
public final class ServerClock: Sendable {
    private struct Pending {
        let deadline: NIODeadline
        let eventLoop: EventLoop
        var scheduled: Scheduled<Void>?
        let fire: @Sendable () -> Void
    }

    private struct State {
        var offset: Int64 = 0
        var pending: [Int: Pending] = [:]
        var lastID = 0
    }

    private let state = NIOLockedValueBox(State())

    /// A clock that reads the real time until someone advances it.
    public init() {}

    /// The current time on this clock.
    public func now() -> NIODeadline {
        NIODeadline.now() + .nanoseconds(state.withLockedValue { $0.offset })
    }

    /// Runs `task` on `eventLoop` (where this is called) once `delay` has passed on this clock.
    /// The returned function cancels it.
    public func schedule(in delay: TimeAmount, on eventLoop: EventLoop, _ task: @escaping () -> Void) -> @Sendable () -> Void {
        let bound = NIOLoopBound(task, eventLoop: eventLoop)
        let fire: @Sendable () -> Void = { bound.value() }
        let id = state.withLockedValue { state -> Int in
            state.lastID += 1
            return state.lastID
        }
        let deadline = now() + delay
        state.withLockedValue { $0.pending[id] = Pending(deadline: deadline, eventLoop: eventLoop, scheduled: nil, fire: fire) }
        let scheduled = eventLoop.scheduleTask(in: delay) { [self] in
            if take(id) != nil { fire() }
        }
        state.withLockedValue { $0.pending[id]?.scheduled = scheduled }
        return { [self] in take(id)?.scheduled?.cancel() }
    }

    /// Moves the clock forward and runs every task now due on its loop. Returns the loops the
    /// tasks went to, so that the caller can wait until they ran.
    @discardableResult
    public func advance(by seconds: Double) -> [EventLoop] {
        let due = state.withLockedValue { state -> [Pending] in
            state.offset += Int64(seconds * 1e9)
            let now = NIODeadline.now() + .nanoseconds(state.offset)
            let due = state.pending.filter { $0.value.deadline <= now }.sorted { $0.value.deadline < $1.value.deadline }
            for (id, _) in due { state.pending[id] = nil }
            return due.map(\.value)
        }
        for task in due {
            task.scheduled?.cancel()
            task.eventLoop.execute(task.fire)
        }
        return due.map(\.eventLoop)
    }

    private func take(_ id: Int) -> Pending? {
        state.withLockedValue { $0.pending.removeValue(forKey: id) }
    }
}
