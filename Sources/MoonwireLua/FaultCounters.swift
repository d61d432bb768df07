// Counts of the faults scripts caused, shared by every VM of the server (moonwire.stats(), and
// the moonwire_lua_faults_total series of the metrics).
import MoonwireCore
import Prometheus
import Synchronization

/// Server-wide fault counters; lock-free, written from every event loop.
public final class FaultCounters: Sendable {
    private let errors = Atomic<Int>(0)
    private let cpuBudget = Atomic<Int>(0)
    private let memory = Atomic<Int>(0)
    private let timeouts = Atomic<Int>(0)
    private let exitCalls = Atomic<Int>(0)

    /// moonwire_lua_faults_total by kind, in the order of `snapshot`.
    private let series: [Counter]

    /// Creates zeroed counters, and their series in `metrics`.
    public init(metrics: ServerMetrics) {
        series = ["error", "cpu_budget", "memory", "timeout", "os_exit"].map {
            metrics.counter("moonwire_lua_faults_total", labels: [("kind", $0)])
        }
    }

    /// Counts one fault.
    public func record(_ kind: LuaScriptError.Kind) {
        switch kind {
        case .error:
            errors.wrappingAdd(1, ordering: .relaxed)
            series[0].increment()
        case .cpuBudget:
            cpuBudget.wrappingAdd(1, ordering: .relaxed)
            series[1].increment()
        case .memory:
            memory.wrappingAdd(1, ordering: .relaxed)
            series[2].increment()
        case .timeout:
            timeouts.wrappingAdd(1, ordering: .relaxed)
            series[3].increment()
        }
    }

    /// Counts one blocked `os.exit` call.
    public func recordExitCall() {
        exitCalls.wrappingAdd(1, ordering: .relaxed)
        series[4].increment()
    }

    /// The counters by their names in moonwire.stats().
    public var snapshot: [(String, Int)] {
        [
            ("handler_errors", errors.load(ordering: .relaxed)),
            ("cpu_budget_exceeded", cpuBudget.load(ordering: .relaxed)),
            ("memory_exceeded", memory.load(ordering: .relaxed)),
            ("timeouts", timeouts.load(ordering: .relaxed)),
            ("os_exit_blocked", exitCalls.load(ordering: .relaxed)),
        ]
    }
}
