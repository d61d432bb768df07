// Reloads the scripts on every event loop: debounced, one reload at a time, validated on one
// loop before the others follow, and logged with its generation, file count and duration.
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Turns "the scripts changed" (inotify, SIGHUP, moonwire.reload()) into new generations.
public final class ScriptReloader: Sendable {
    private let hosts: [NIOLoopBound<LuaEventLoopHost>]
    private let runtime: LuaRuntime
    private let queue = DispatchQueue(label: "moonwire.reload")
    private let latestRequest = NIOLockedValueBox(0)
    private let generation = NIOLockedValueBox(1)
    private let failure = NIOLockedValueBox<LuaScriptError?>(nil)
    private let reloaded: @Sendable (ScriptSettings) -> Void

    /// Quiet time after the last change before reloading, so an editor's write-and-rename
    /// (or a `git checkout` of many files) counts once.
    public static let debounce = TimeInterval(0.05)

    /// Creates the reloader of a server's hosts (one per event loop and worker); `reloaded`
    /// gets the new generation's settings after every successful reload (new certificates).
    public init(
        hosts: [NIOLoopBound<LuaEventLoopHost>], runtime: LuaRuntime,
        reloaded: @escaping @Sendable (ScriptSettings) -> Void = { _ in }
    ) {
        self.hosts = hosts
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

    /// Reloads at once, blocking the caller until every loop has its new generation.
    public func reloadNow(reason: String) {
        let next = generation.withLockedValue { $0 } + 1
        let started = DispatchTime.now()
        for (position, host) in hosts.enumerated() {
            do {
                try host.eventLoop.submit { try host.value.load(generation: next) }.wait()
            } catch {
                let scriptError = error as? LuaScriptError ?? LuaScriptError(message: "\(error)")
                failure.withLockedValue { $0 = scriptError }
                runtime.logger.error(
                    "reload failed; the previous scripts keep serving",
                    metadata: ["error": "\(scriptError.message)", "traceback": "\(scriptError.traceback)", "reason": "\(reason)"])
                // The first loop validates; a later one failing would mean loops disagree,
                // which only a race with a further edit can cause, and that edit reloads again.
                if position == 0 { return }
            }
        }
        generation.withLockedValue { $0 = next }
        failure.withLockedValue { $0 = nil }
        if let first = hosts.first, let settings = try? first.eventLoop.submit({ first.value.current.settings }).wait() {
            reloaded(settings)
        }
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        runtime.logger.info(
            "scripts reloaded",
            metadata: [
                "generation": "\(next)", "files": "\(Self.scriptCount(in: runtime.scriptsDirectory))",
                "ms": "\((milliseconds * 10).rounded() / 10)", "reason": "\(reason)",
            ])
    }

    private static func scriptCount(in directory: String) -> Int {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return 0 }
        return enumerator.compactMap { $0 as? String }.filter { $0.hasSuffix(".lua") }.count
    }
}
