// One event loop's way into the server's series: the request counters it has used are kept
// in a dictionary of its own, so a request finds its counter without the registry's lock and
// adds to it with one relaxed atomic.
import NIOCore
import Prometheus

/// What the metrics note of a request, from its dispatch to its answer's end.
struct RequestMetricsEntry {
    var method: String
    var started: NIODeadline
    var status = 0
    /// Body bytes of the answer; nil when not known in advance (a streamed body).
    var bytes: Int?
    /// The pattern of the route that took the request; nil: none did.
    var route: String?
}

/// The labels of one request series.
struct RequestSeries: Hashable {
    var method: String
    var status: Int
    var route: String
}

/// A loop's cache of the server's series. Used on its loop only.
final class LoopMetrics {
    let server: ServerMetrics
    private var requests: [RequestSeries: Counter] = [:]
    /// The series of the last request counted, and its counter.
    private var lastSeries = RequestSeries(method: "", status: 0, route: "")
    private var lastCounter: Counter?

    init(_ server: ServerMetrics) {
        self.server = server
    }

    /// Counts an answered request: its series, its latency from `started`, its body bytes.
    func requestAnswered(_ entry: RequestMetricsEntry) {
        let method = Self.methodLabel(entry.method)
        let route = entry.route ?? "none"
        let counter: Counter
        if let lastCounter, lastSeries.status == entry.status, lastSeries.method == method, lastSeries.route == route {
            // Most requests repeat the one before: compared in place, without hashing or copies.
            counter = lastCounter
        } else {
            let series = RequestSeries(method: method, status: entry.status, route: route)
            if let cached = requests[series] {
                counter = cached
            } else {
                counter = server.requestCounter(method: method, status: entry.status, route: route)
                requests[series] = counter
            }
            lastSeries = series
            lastCounter = counter
        }
        counter.increment()
        server.latency.observe(nanoseconds: (NIODeadline.now() - entry.started).nanoseconds)
        if let bytes = entry.bytes, bytes > 0 { server.responseBytes.increment(by: Int64(bytes)) }
    }

    /// The method as a label: a client may send any token as a method, so those outside the
    /// standard ones are counted together, as "other", to keep the series few.
    static func methodLabel(_ method: String) -> String {
        switch method {
        case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE": method
        default: "other"
        }
    }

    /// Counts a connection open until `channel` closes.
    func connectionOpened(_ channel: Channel) {
        let gauge = server.openConnections
        gauge.increment()
        channel.closeFuture.whenComplete { _ in gauge.decrement() }
    }
}
