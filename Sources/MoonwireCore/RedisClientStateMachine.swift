// The state of one Redis client (one connection, pipelined): which calls wait for which
// reply, when to connect, and how long to wait after a failure before trying again. It
// returns what to do and touches no socket, so it is tested without one (RedisClient drives it).
import NIOCore

/// Calls by id through connect, handshake (AUTH, SELECT), replies in order, and back-off.
public struct RedisClientStateMachine {
    public enum Phase: Equatable {
        /// No connection and nothing waits for one.
        case idle
        case connecting
        case connected
        /// The last attempt failed: calls fail at once until `until`, then one connects again.
        case waitingToRetry(until: NIODeadline)
    }

    /// What to do with a call just submitted.
    public enum Submission: Equatable {
        /// Write it now, behind the calls in flight.
        case send
        /// It waits for the connection under way.
        case queued
        /// It waits; start connecting.
        case connect
        /// Redis is unreachable for now: answer the call with this at once.
        case fail(String)
    }

    /// What a reply means.
    public enum Delivery: Equatable {
        /// The answer to call `id`.
        case complete(id: Int, RedisReply)
        /// A handshake command succeeded.
        case handshakeStep
        /// The handshake failed (wrong password, no such db) or a reply came that nothing
        /// waits for: close the connection (it then reports `connectionLost`).
        case close(reason: String)
    }

    /// Whom a reply in flight belongs to.
    private enum Waiter: Equatable {
        case handshake(String)
        case call(Int)
    }

    public private(set) var phase = Phase.idle
    /// Calls submitted while connecting, sent once connected.
    private var queued: [Int] = []
    /// Replies expected, oldest first.
    private var inFlight: [Waiter] = []
    private var inFlightHead = 0
    /// Failed attempts in a row: the back-off doubles with each.
    public private(set) var failures = 0
    private var lastFailure = ""

    /// The first back-off; it doubles up to `maximumBackoff`.
    public static let firstBackoff = TimeAmount.milliseconds(100)
    public static let maximumBackoff = TimeAmount.seconds(5)

    public init() {}

    /// How long to wait after `failures` failed attempts in a row.
    public static func backoff(after failures: Int) -> TimeAmount {
        let doubled = firstBackoff.nanoseconds << min(max(failures - 1, 0), 16)
        return .nanoseconds(min(doubled, maximumBackoff.nanoseconds))
    }

    /// Calls waiting for a reply or a connection.
    public var pending: Int { queued.count + inFlight.count - inFlightHead }

    public mutating func submit(id: Int, now: NIODeadline) -> Submission {
        switch phase {
        case .connected:
            inFlight.append(.call(id))
            return .send
        case .connecting:
            queued.append(id)
            return .queued
        case .waitingToRetry(let until) where now < until:
            let seconds = Double((until - now).nanoseconds) / 1e9
            return .fail("\(lastFailure) (next try in \(String(format: "%.1f", seconds)) s)")
        case .idle, .waitingToRetry:
            phase = .connecting
            queued.append(id)
            return .connect
        }
    }

    /// The connection is up: returns the calls to write after the handshake commands (whose
    /// names are `handshake`, in order).
    public mutating func connected(handshake: [String]) -> [Int] {
        phase = .connected
        inFlight = handshake.map { .handshake($0) } + queued.map { .call($0) }
        inFlightHead = 0
        defer { queued = [] }
        if handshake.isEmpty { failures = 0 }
        return queued
    }

    /// A whole reply arrived.
    public mutating func received(_ reply: RedisReply) -> Delivery {
        guard inFlightHead < inFlight.count else { return .close(reason: "a reply that no command asked for") }
        let waiter = inFlight[inFlightHead]
        inFlightHead += 1
        if inFlightHead == inFlight.count {
            inFlight.removeAll(keepingCapacity: true)
            inFlightHead = 0
        }
        switch waiter {
        case .call(let id): return .complete(id: id, reply)
        case .handshake(let command):
            if case .error(let message) = reply { return .close(reason: "\(command) failed: \(message)") }
            failures = 0
            return .handshakeStep
        }
    }

    /// Whether call `id` still waits (a timeout that fires after its reply finds nothing).
    public func isWaiting(_ id: Int) -> Bool {
        queued.contains(id) || inFlight[inFlightHead...].contains(.call(id))
    }

    /// Redis is known to answer again (another connection to it just succeeded): the next
    /// call connects instead of failing for the rest of the back-off.
    public mutating func endBackoff() {
        if case .waitingToRetry = phase { phase = .idle }
    }

    /// The connection attempt failed or the connection closed: returns the calls that lose
    /// their answer (they get `reason`), and starts the back-off.
    public mutating func connectionLost(reason: String, now: NIODeadline) -> [Int] {
        var lost = queued
        for case .call(let id) in inFlight[inFlightHead...] { lost.append(id) }
        queued = []
        inFlight = []
        inFlightHead = 0
        failures += 1
        lastFailure = reason
        phase = .waitingToRetry(until: now + Self.backoff(after: failures))
        return lost
    }
}
