// One reading of the server's series for the live dashboard, taken from the very exposition
// /metrics serves, so the dashboard and a Prometheus scrape can never disagree. The dashboard
// reads it once a second, not per request: the request path pays nothing for it.

/// The server's totals at one moment. Counters only grow; the dashboard turns two readings
/// into rates and the latency buckets of a window into percentiles.
public struct DashboardSample: Sendable, Equatable {
    /// Answered requests.
    public var requests: Double = 0
    /// Answered requests by status class: index 0 is 1xx, 4 is 5xx.
    public var requestsByClass: [Double] = [0, 0, 0, 0, 0]
    /// Open connections and WebSockets.
    public var openConnections: Double = 0
    public var openWebSockets: Double = 0
    /// Body bytes answered.
    public var responseBytes: Double = 0
    /// Lua faults by kind (`error`, `cpu_budget`, `memory`, `timeout`, `os_exit`).
    public var faults: [String: Double] = [:]
    /// Script reloads that succeeded.
    public var reloads: Double = 0
    /// Cumulative latency bucket counts, one per `LatencyHistogram.bounds` and a last for +Inf.
    public var latencyBuckets: [Double] = Array(repeating: 0, count: LatencyHistogram.bounds.count + 1)

    /// Zeroes.
    public init() {}

    /// Reads the built-in series of `metrics`.
    public init(_ metrics: ServerMetrics) {
        self.init(exposition: metrics.exposition())
    }

    /// Reads the built-in series of a text exposition; other lines are skipped.
    public init(exposition: [UInt8]) {
        self.init()
        for line in exposition.split(separator: UInt8(ascii: "\n")) where line.first != UInt8(ascii: "#") {
            guard let space = line.lastIndex(of: UInt8(ascii: " ")),
                let value = Double(String(decoding: line[(space + 1)...], as: UTF8.self))
            else { continue }
            let series = line[..<space]
            let brace = series.firstIndex(of: UInt8(ascii: "{")) ?? series.endIndex
            let name = String(decoding: series[..<brace], as: UTF8.self)
            let labels = String(decoding: series[brace...], as: UTF8.self)
            note(name, labels: labels, value: value)
        }
    }

    private mutating func note(_ name: String, labels: String, value: Double) {
        switch name {
        case "moonwire_http_requests_total":
            requests += value
            if let status = Self.label("status", in: labels).flatMap(Int.init), (100..<600).contains(status) {
                requestsByClass[status / 100 - 1] += value
            }
        case "moonwire_open_connections": openConnections = value
        case "moonwire_open_websockets": openWebSockets = value
        case "moonwire_http_response_bytes_total": responseBytes = value
        case "moonwire_reloads_total": reloads = value
        case "moonwire_lua_faults_total":
            if let kind = Self.label("kind", in: labels) { faults[kind, default: 0] += value }
        case "moonwire_http_request_duration_seconds_bucket":
            guard let bound = Self.label("le", in: labels) else { return }
            let index =
                bound == "+Inf" ? LatencyHistogram.bounds.count : Double(bound).flatMap { LatencyHistogram.bounds.firstIndex(of: $0) }
            if let index { latencyBuckets[index] = value }
        default: break
        }
    }

    /// A label's value in `{a="1",b="2"}` (the built-in labels hold no quotes or escapes).
    private static func label(_ name: String, in labels: String) -> String? {
        guard let start = labels.range(of: "\(name)=\"") else { return nil }
        let rest = labels[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    /// The latency under which `quantile` (0...1) of the requests answered between `earlier`
    /// and this sample fell, in seconds, interpolated inside its bucket as Prometheus's
    /// histogram_quantile does; nil when none were answered. Past the last bound it is that
    /// bound (the histogram knows no more).
    public func latencyQuantile(_ quantile: Double, since earlier: DashboardSample) -> Double? {
        let counts = zip(latencyBuckets, earlier.latencyBuckets).map { max(0, $0 - $1) }
        guard let total = counts.last, total > 0 else { return nil }
        let rank = quantile * total
        let bounds = LatencyHistogram.bounds
        for (index, cumulative) in counts.enumerated() where cumulative >= rank {
            guard index < bounds.count else { return bounds[bounds.count - 1] }
            let lower = index == 0 ? 0 : bounds[index - 1]
            let below = index == 0 ? 0 : counts[index - 1]
            let inBucket = cumulative - below
            return inBucket > 0 ? lower + (bounds[index] - lower) * (rank - below) / inBucket : bounds[index]
        }
        return bounds[bounds.count - 1]
    }
}
