// A zero-downtime binary upgrade, as nginx's: on SIGUSR2 the running server starts the new
// binary with its listening sockets (inherited descriptors, listed in MOONWIRE_LISTEN_FDS) and a
// pipe (MOONWIRE_READY_FD); the new process binds nothing of its own on those addresses, and
// writes "ready" on the pipe once it listens and its scripts started. Only then does the old one
// drain (the graceful stop); if the new one exits, closes the pipe or stays silent too long,
// the old one keeps serving and says why. The rules are here, without processes or sockets.

/// The old process's side of one upgrade.
public struct UpgradeHandshake: Sendable {
    public enum State: Equatable, Sendable {
        /// Serving; an upgrade may begin.
        case serving
        /// The new process (pid) runs and has not said it is serving yet.
        case waiting(pid: Int32)
        /// The new process serves; this one drains.
        case handedOver
    }

    /// What the old process does next.
    public enum Action: Equatable, Sendable {
        /// Start the new binary.
        case spawn
        /// Nothing changes (the reason is logged).
        case ignore(String)
        /// The upgrade failed: log the reason, stop the new process if it still runs, serve on.
        case keepServing(reason: String, stop: Int32?)
        /// The new process serves: drain this one.
        case drain
    }

    public private(set) var state = State.serving

    /// Starts in `serving`.
    public init() {}

    /// SIGUSR2 or `moonwire upgrade`.
    public mutating func requested() -> Action {
        switch state {
        case .serving: return .spawn
        case .waiting(let pid): return .ignore("an upgrade is already under way (process \(pid))")
        case .handedOver: return .ignore("this process has handed over and is draining")
        }
    }

    /// The new binary started.
    public mutating func spawned(pid: Int32) {
        if case .serving = state { state = .waiting(pid: pid) }
    }

    /// The new binary could not be started.
    public mutating func spawnFailed(_ reason: String) -> Action {
        state = .serving
        return .keepServing(reason: "cannot start the new binary: \(reason)", stop: nil)
    }

    /// A line from the new process's pipe.
    public mutating func received(_ line: String) -> Action {
        guard case .waiting = state else { return .ignore("a message from no upgrade under way") }
        guard line == Self.ready else { return .ignore("unexpected message from the new process: \(line)") }
        state = .handedOver
        return .drain
    }

    /// The pipe closed without "ready": the new process exited (its status, if known).
    public mutating func pipeClosed(exitStatus: Int32?) -> Action {
        guard case .waiting = state else { return .ignore("the pipe closed after the handover") }
        state = .serving
        let how = exitStatus.map { "exited with status \($0)" } ?? "closed its pipe"
        return .keepServing(reason: "the new process \(how) before it was serving", stop: nil)
    }

    /// The new process said nothing within the time allowed.
    public mutating func timedOut(after seconds: Double) -> Action {
        guard case .waiting(let pid) = state else { return .ignore("no upgrade is waiting") }
        state = .serving
        return .keepServing(reason: "the new process was not serving within \(seconds) s", stop: pid)
    }

    /// What the new process writes on the pipe once it serves.
    public static let ready = "ready"
    /// The variable listing the inherited listening descriptors: `fd=key,fd=key`.
    public static let listenVariable = "MOONWIRE_LISTEN_FDS"
    /// The variable naming the descriptor of the pipe's writing end.
    public static let readyVariable = "MOONWIRE_READY_FD"

    /// `3=127.0.0.1:8080,4=[::1]:8443` for descriptors by listener key.
    public static func listenValue(_ descriptors: [String: Int32]) -> String {
        descriptors.sorted { $0.value < $1.value }.map { "\($0.value)=\($0.key)" }.joined(separator: ",")
    }

    /// Reads a `MOONWIRE_LISTEN_FDS` value back; nil when it is malformed (nothing is then
    /// inherited, so nothing is taken by mistake).
    public static func parseListenValue(_ value: String) -> [String: Int32]? {
        var descriptors: [String: Int32] = [:]
        for entry in value.split(separator: ",") {
            guard let equals = entry.firstIndex(of: "="), let descriptor = Int32(entry[..<equals]), descriptor > 2 else { return nil }
            let key = String(entry[entry.index(after: equals)...])
            guard !key.isEmpty, descriptors[key] == nil else { return nil }
            descriptors[key] = descriptor
        }
        return descriptors
    }
}
