// The zero-downtime binary upgrade (UpgradeHandshake has the rules): on SIGUSR2 the server
// starts its own binary again (the file at its path now, so a binary replaced in place is the
// new one) with the same arguments, hands it the listening descriptors and a pipe, and drains
// once the new process writes "ready" on it. `InheritedListeners` is the new process's side.
import Dispatch
import Foundation
import Logging
import MoonwireCore
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The old process's side of upgrades.
final class BinaryUpgrade: Sendable {
    private let server: Server
    private let logger: Logger
    private let handOver: @Sendable () -> Void
    private let machine = NIOLockedValueBox(UpgradeHandshake())
    private let queue = DispatchQueue(label: "moonwire.upgrade")
    /// How long the new process has to say it serves.
    static let timeout: Double = 30

    /// `handOver` begins this process's graceful stop.
    init(server: Server, logger: Logger, handOver: @escaping @Sendable () -> Void) {
        self.server = server
        self.logger = logger
        self.handOver = handOver
    }

    /// Whether a new process serves the listeners (this one drains for it).
    var handedOver: Bool { machine.withLockedValue { $0.state == .handedOver } }

    /// SIGUSR2: one upgrade at a time, off the signal handler.
    func request() {
        queue.async { self.upgrade() }
    }

    private func upgrade() {
        guard act(machine.withLockedValue { $0.requested() }) else { return }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0, fcntl(ends[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(ends[1], F_SETFD, FD_CLOEXEC) == 0 else {
            _ = act(machine.withLockedValue { $0.spawnFailed("pipe: \(String(cString: strerror(errno)))") })
            return
        }
        let descriptors = server.bound.mapValues(\.descriptor)
        let path = Self.executable()
        let spawned = Self.spawn(path: path, inherit: Array(descriptors.values) + [ends[1]], environment: [
            UpgradeHandshake.listenVariable: UpgradeHandshake.listenValue(descriptors),
            UpgradeHandshake.readyVariable: "\(ends[1])",
        ])
        close(ends[1])
        defer { close(ends[0]) }
        let pid: Int32
        switch spawned {
        case .success(let started): pid = started
        case .failure(let error):
            _ = act(machine.withLockedValue { $0.spawnFailed("\(path): \(error.description)") })
            return
        }
        machine.withLockedValue { $0.spawned(pid: pid) }
        logger.notice("upgrade: started the new binary, waiting until it serves", metadata: ["pid": "\(pid)", "binary": "\(path)"])
        switch Self.readLine(ends[0], timeout: Self.timeout) {
        case .line(let line):
            _ = act(machine.withLockedValue { $0.received(line) })
        case .closed:
            let status = Self.reap(pid)
            _ = act(machine.withLockedValue { $0.pipeClosed(exitStatus: status) })
        case .timedOut:
            _ = act(machine.withLockedValue { $0.timedOut(after: Self.timeout) })
        }
    }

    /// Does what the handshake says; false when nothing more is to be done.
    private func act(_ action: UpgradeHandshake.Action) -> Bool {
        switch action {
        case .spawn:
            return true
        case .ignore(let reason):
            logger.warning("upgrade: \(reason)")
        case .keepServing(let reason, let stop):
            if let stop {
                kill(stop, SIGKILL)
                _ = Self.reap(stop)
            }
            logger.error("upgrade failed; this process keeps serving", metadata: ["error": "\(reason)"])
        case .drain:
            logger.notice("upgrade: the new process serves; this one drains")
            handOver()
        }
        return false
    }

    /// The binary at this process's path now (the path /proc/self/exe had, without the
    /// " (deleted)" a replaced file gets).
    static func executable() -> String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return path.hasSuffix(" (deleted)") ? String(path.dropLast(" (deleted)".count)) : path
    }

    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts `path` with this process's arguments and environment plus `environment`; the
    /// `inherit` descriptors stay open in it (dup2 onto themselves clears close-on-exec).
    static func spawn(path: String, inherit: [Int32], environment: [String: String]) -> Result<Int32, SpawnError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for descriptor in inherit { posix_spawn_file_actions_adddup2(&actions, descriptor, descriptor) }
        let names = Set(environment.keys)
        let variables = ProcessInfo.processInfo.environment.filter { !names.contains($0.key) }.merging(environment) { $1 }
        let arguments = [path] + CommandLine.arguments.dropFirst()
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // The new process starts with no signal blocked and the signals this one catches at
        // their defaults (an ignored signal would stay ignored across exec); it catches them
        // again itself.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var caught = sigset_t()
        sigemptyset(&caught)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2] { sigaddset(&caught, signal) }
        posix_spawnattr_setsigdefault(&attributes, &caught)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard status == 0 else { return .failure(SpawnError(description: String(cString: strerror(status)))) }
        return .success(pid)
    }

    enum Reading: Equatable {
        case line(String)
        case closed
        case timedOut
    }

    /// Reads one line from `descriptor` within `timeout` seconds.
    static func readLine(_ descriptor: Int32, timeout: Double) -> Reading {
        let deadline = DispatchTime.now() + timeout
        var text: [UInt8] = []
        while true {
            let left = Int64(deadline.uptimeNanoseconds) - Int64(DispatchTime.now().uptimeNanoseconds)
            guard left > 0 else { return .timedOut }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(left / 1_000_000 + 1, 1000)))
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { continue }
            var byte: UInt8 = 0
            let count = read(descriptor, &byte, 1)
            if count < 0, errno == EINTR { continue }
            guard count == 1 else { return .closed }
            if byte == UInt8(ascii: "\n") { return .line(String(decoding: text, as: UTF8.self)) }
            text.append(byte)
        }
    }

    /// Waits up to a second for `pid` to end; its exit status (or 128 + signal), nil if it
    /// still runs.
    static func reap(_ pid: Int32) -> Int32? {
        for _ in 0..<100 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
            usleep(10_000)
        }
        return nil
    }
}

/// The new process's side: the listening descriptors inherited from the old process, and the
/// pipe to tell it this one serves. Read once, at start, and taken out of the environment so
/// nothing started later inherits them by mistake.
struct InheritedListeners {
    /// Listening descriptors by listener key (only those that really are listening sockets).
    let descriptors: [String: CInt]
    private let ready: CInt?

    init() {
        let environment = ProcessInfo.processInfo.environment
        let listed = environment[UpgradeHandshake.listenVariable].flatMap(UpgradeHandshake.parseListenValue) ?? [:]
        descriptors = listed.filter { ListeningDescriptor.listeningPort(of: $0.value) != nil }
        for (_, descriptor) in listed where descriptors.values.contains(descriptor) == false { close(descriptor) }
        ready = environment[UpgradeHandshake.readyVariable].flatMap { CInt($0) }
        unsetenv(UpgradeHandshake.listenVariable)
        unsetenv(UpgradeHandshake.readyVariable)
        for descriptor in Array(descriptors.values) + (ready.map { [$0] } ?? []) { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    }

    /// Whether this process was started by an upgrade.
    var isUpgrade: Bool { ready != nil }

    /// Closes the inherited descriptors the server did not take (a listener the new scripts
    /// no longer declare).
    func closeUnused(bound: [String: (listener: Listener, descriptor: CInt, port: Int)]) {
        let used = Set(bound.values.map(\.descriptor))
        for descriptor in descriptors.values where !used.contains(descriptor) { close(descriptor) }
    }

    /// Tells the old process this one serves.
    func announceReady() {
        guard let ready else { return }
        let line = Array("\(UpgradeHandshake.ready)\n".utf8)
        _ = line.withUnsafeBytes { write(ready, $0.baseAddress, $0.count) }
        close(ready)
    }
}
