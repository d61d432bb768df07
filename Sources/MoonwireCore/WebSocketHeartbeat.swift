// The heartbeat's half of a WebSocket's state (WebSocketStateMachine): when the client was last
// heard from and whether our ping awaits its answer. The machine tells it of every frame that
// arrives and asks it at each tick; the times are the connection's settings.
import NIOCore

/// When a silent client is due a ping (or OnBeforeHeartBeat), and when one that did not answer
/// it is dropped.
struct WebSocketHeartbeat {
    /// When the client last sent a frame (or the server last held its reading).
    private var lastHeard: NIODeadline
    /// When our ping awaiting its answer went out.
    private var pingSent: NIODeadline?

    init(now: NIODeadline) {
        lastHeard = now
    }

    /// The client was heard from at `now`: its silence counts from here.
    mutating func heard(_ now: NIODeadline) {
        lastHeard = now
    }

    /// A check at `now`, a few times per `interval` (seconds); `timeout` is how long our ping
    /// may wait for its answer.
    mutating func tick(now: NIODeadline, interval: Double, timeout: Double) -> WebSocketStateMachine.HeartbeatAction {
        if let sent = pingSent {
            if lastHeard >= sent {
                pingSent = nil
                return .none
            }
            return now - sent >= .nanoseconds(Int64(timeout * 1e9)) ? .timeOut : .none
        }
        guard now - lastHeard >= .nanoseconds(Int64(interval * 1e9)) else { return .none }
        return .due
    }

    /// The delegate was asked about a silent client; true when our ping is to go out, since
    /// the delegate did not handle the heartbeat itself.
    mutating func due(handledByDelegate: Bool, now: NIODeadline) -> Bool {
        if handledByDelegate {
            lastHeard = now
            return false
        }
        pingSent = now
        return true
    }
}
