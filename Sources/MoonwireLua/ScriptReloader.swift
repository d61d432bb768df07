// Reloads the scripts on every event loop: debounced, one reload at a time, and logged with its
// generation, file count and duration. A reload reads the scripts once (ScriptSnapshot), builds
// every loop's new generation from that one copy here, off the event loops (a slow or
// runaway top level never stalls a loop), and hands the generations over only when all of
// them loaded.
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Turns "the scripts changed" (inotify, SIGHUP, moonwire.reload()) into new generations.
public final class ScriptReloader: Sendable {
    private let hosts: [NIOLoopBound<LuaEventLoopHost>]
    private let workerHosts: [NIOLoopBound<LuaEventLoopHost>]
    private let runtime: LuaRuntime
    private let queue = DispatchQueue(label: "moonwire.reload")
    private let latestRequest = NIOLockedValueBox(0)
    private let generation = NIOLockedValueBox(1)
    private let failure = NIOLockedValueBox<LuaScriptError?>(nil)

    private let reloaded: @Sendable (ScriptSettings) -> Void

    /// Quiet time after the last change before reloading, so an editor's write-and-rename
    /// (or a `git checkout` of many files) counts once.
    public static let debounce = TimeInterval(0.05)

    /// Creates the reloader of a server's hosts (one per event loop, and one per worker);
    /// `reloaded` gets the new generation's settings after every successful reload (new
    /// certificates).
    public init(
        hosts: [NIOLoopBound<LuaEventLoopHost>], workerHosts: [NIOLoopBound<LuaEventLoopHost>] = [], runtime: LuaRuntime,
        reloaded: @escaping @Sendable (ScriptSettings) -> Void = { _ in }
    ) {
        self.hosts = hosts
        self.workerHosts = workerHosts
        self.runtime = runtime
        self.reloaded = reloaded
    }

    /// The error of the last reload attempt, nil once a reload succeeded (for the dashboard).
    public var lastError: LuaScriptError? { failure.withLockedValue { $0 } }

    /// Schedules a reload after the debounce interval; later requests push it back.
    public func requestReload(reason: String) {
        let token = latestRequest.withLockedValue { value -> Int in
            value += 1
            return value
        }
        queue.asyncAfter(deadline: .now() + Self.debounce) {
            guard self.latestRequest.withLockedValue({ $0 }) == token else { return }
            self.reloadNow(reason: reason)
        }
    }

    /// Reads the scripts and builds every loop's VM from them, here; again when a file
    /// changed meanwhile (a writer that paused between truncating and writing), for at most
    /// five seconds.
    private func build(generation: Int) throws -> (ScriptSnapshot, [(NIOLoopBound<LuaEventLoopHost>, LuaVM)]) {
        let deadline = Date().addingTimeInterval(5)
        while true {
            let scripts = try ScriptSnapshot.readSettled(directory: runtime.scriptsDirectory)
            let built = try (hosts.map { ($0, false) } + workerHosts.map { ($0, true) }).map { host, isWorker in
                (host, try LuaVM(runtime: runtime, scripts: scripts, eventLoop: host.eventLoop, generation: generation, isWorker: isWorker))
            }
            if scripts.isUnchanged() { return (scripts, built) }
            if Date() > deadline { throw ScriptSnapshot.ReadError.unsettled("the scripts kept changing for five seconds") }
        }
    }

    /// Reloads at once, blocking the caller until every loop has its new generation.
    public func reloadNow(reason: String) {
        let next = generation.withLockedValue { $0 } + 1
        let started = DispatchTime.now()
        let built: [(NIOLoopBound<LuaEventLoopHost>, LuaVM)]
        let scripts: ScriptSnapshot
        do {
            (scripts, built) = try build(generation: next)
        } catch {
            let scriptError = error as? LuaScriptError ?? LuaScriptError(message: "\(error)")
            failure.withLockedValue { $0 = scriptError }
            runtime.dashboardEvents.reload(generation: next, milliseconds: 0, reason: reason, error: scriptError.message)
            runtime.logger.error(
                "reload failed; the previous scripts keep serving",
                metadata: ["error": "\(scriptError.message)", "traceback": "\(scriptError.traceback)", "reason": "\(reason)"])
            return
        }
        let settings = built.first?.1.settings
        for (host, vm) in built {
            let handover = LuaVMHandover(vm: vm)
            try? host.eventLoop.submit { host.value.install(handover.vm) }.wait()
        }
        generation.withLockedValue { $0 = next }
        failure.withLockedValue { $0 = nil }
        runtime.reloads.increment()
        if let settings { reloaded(settings) }
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        runtime.dashboardEvents.reload(generation: next, milliseconds: milliseconds, reason: reason, error: nil)
        runtime.logger.info(
            "scripts reloaded",
            metadata: [
                "generation": "\(next)", "files": "\(scripts.paths.count)", "bytes": "\(scripts.byteCount)", "ms": "\((milliseconds * 10).rounded() / 10)",
                "reason": "\(reason)",
            ])
    }
}

/// A generation built on the reload thread, on its way to the loop that will own it; nothing
/// touches it in between.
private struct LuaVMHandover: @unchecked Sendable {
    let vm: LuaVM
}
