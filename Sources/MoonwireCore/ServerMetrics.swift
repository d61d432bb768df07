// The server's Prometheus series (moonwire.options{metrics = {path = ...}}), kept in a
// swift-prometheus registry that scripts add their own series to as well. Counters and gauges
// are swift-prometheus's, which count with relaxed atomics; the request series are looked up
// through a per-loop cache (LoopMetrics), so a request takes no lock, and the latency
// histogram is this server's own (LatencyHistogram), since swift-prometheus's takes a lock
// per observation.
import Prometheus

/// Every series of one server: the built-in ones and those scripts make. Thread-safe.
public final class ServerMetrics: Sendable {
    /// The registry the exposition is written from.
    public let registry = PrometheusCollectorRegistry()
    /// The families made so far, so that a name is not given two types or label sets.
    public let families = MetricFamilies()
    let latency = LatencyHistogram(name: "moonwire_http_request_duration_seconds")
    let responseBytes: Counter
    let openConnections: Gauge
    let openWebSockets: Gauge
    let webSocketMessagesIn: Counter
    let webSocketMessagesOut: Counter

    /// Creates the registry and the server's series.
    public init() {
        responseBytes = registry.makeCounter(descriptor: Self.name("moonwire_http_response_bytes_total"))
        openConnections = registry.makeGauge(descriptor: Self.name("moonwire_open_connections"))
        openWebSockets = registry.makeGauge(descriptor: Self.name("moonwire_open_websockets"))
        webSocketMessagesIn = registry.makeCounter(
            descriptor: Self.name("moonwire_websocket_messages_total"), labels: [("direction", "in")])
        webSocketMessagesOut = registry.makeCounter(
            descriptor: Self.name("moonwire_websocket_messages_total"), labels: [("direction", "out")])
        for (name, kind, labels) in Self.builtIn {
            try? families.claim(name: name, kind: kind, labelNames: labels)
        }
    }

    /// The built-in families, which scripts cannot take.
    static let builtIn: [(String, MetricKind, [String])] = [
        ("moonwire_http_requests_total", .counter, ["method", "route", "status"]),
        ("moonwire_http_request_duration_seconds", .histogram, []),
        ("moonwire_http_response_bytes_total", .counter, []),
        ("moonwire_open_connections", .gauge, []),
        ("moonwire_open_websockets", .gauge, []),
        ("moonwire_websocket_messages_total", .counter, ["direction"]),
        ("moonwire_lua_faults_total", .counter, ["kind"]),
        ("moonwire_reloads_total", .counter, []),
        ("moonwire_outbound_requests_total", .counter, []),
    ]

    /// The counter of requests with these labels (registry lookup: callers cache it).
    func requestCounter(method: String, status: Int, route: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.name("moonwire_http_requests_total"),
            labels: [("method", method), ("route", route), ("status", String(status))])
    }

    /// A counter of the server's that is not on the request path (faults, reloads, outbound
    /// requests); `labels` sorted by name.
    public func counter(_ name: String, labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(descriptor: Self.name(name), labels: labels)
    }

    /// A family's name as swift-prometheus takes it: whole, without a HELP line.
    public static func name(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: "")
    }

    /// The text exposition (format 0.0.4) of every series.
    public func exposition() -> [UInt8] {
        var buffer = registry.emitToBuffer()
        latency.emit(into: &buffer)
        return buffer
    }
}
