// The request latency histogram. swift-prometheus's histogram takes a lock per observation,
// which every event loop would share on every request; this one counts with relaxed atomics,
// as swift-prometheus's counters do, and writes the same exposition.
import Atomics

/// A histogram of seconds with fixed buckets. Thread-safe, lock-free.
public final class LatencyHistogram: Sendable {
    /// Upper bounds, in seconds: Prometheus's default buckets.
    public static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    let name: String
    /// Per bucket (not cumulative); the last one is +Inf.
    private let counts: [ManagedAtomic<Int>]
    private let microseconds = ManagedAtomic<Int>(0)

    init(name: String) {
        self.name = name
        counts = (0...Self.bounds.count).map { _ in ManagedAtomic<Int>(0) }
    }

    /// Records one observation of `nanoseconds`.
    func observe(nanoseconds: Int64) {
        let seconds = Double(nanoseconds) / 1e9
        var index = 0
        while index < Self.bounds.count, seconds > Self.bounds[index] { index += 1 }
        counts[index].wrappingIncrement(by: 1, ordering: .relaxed)
        microseconds.wrappingIncrement(by: Int(nanoseconds / 1000), ordering: .relaxed)
    }

    /// Appends the family: TYPE line, cumulative buckets, sum and count.
    func emit(into buffer: inout [UInt8]) {
        var text = "# TYPE \(name) histogram\n"
        var total = 0
        for (index, count) in counts.enumerated() {
            total += count.load(ordering: .relaxed)
            let bound = index < Self.bounds.count ? Self.format(Self.bounds[index]) : "+Inf"
            text += "\(name)_bucket{le=\"\(bound)\"} \(total)\n"
        }
        text += "\(name)_sum \(Self.format(Double(microseconds.load(ordering: .relaxed)) / 1e6))\n"
        text += "\(name)_count \(total)\n"
        buffer.append(contentsOf: text.utf8)
    }

    /// A number as Prometheus writes it: integers without a fraction.
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
