import XCTest

@testable import MoonwireCore

/// The dashboard's reading of the server's series: what it takes from a real registry's
/// exposition, and the percentiles it estimates from the latency buckets.
final class DashboardSampleTests: XCTestCase {
    func testReadsTheBuiltInSeriesOfTheRegistry() {
        let metrics = ServerMetrics()
        metrics.requestCounter(method: "GET", status: 200, route: "/a").increment(by: Int64(7))
        metrics.requestCounter(method: "POST", status: 201, route: "none").increment(by: Int64(2))
        metrics.requestCounter(method: "GET", status: 404, route: "none").increment(by: Int64(3))
        metrics.requestCounter(method: "GET", status: 503, route: "/b").increment()
        metrics.openConnections.increment(by: 4.0)
        metrics.openWebSockets.increment()
        metrics.counter("moonwire_lua_faults_total", labels: [("kind", "timeout")]).increment(by: Int64(2))
        metrics.counter("moonwire_reloads_total").increment()
        // A script's series with a look-alike label is not the server's.
        metrics.counter("app_total", labels: [("status", "500")]).increment(by: Int64(99))
        for _ in 0..<3 { metrics.latency.observe(nanoseconds: 2_000_000) }
        metrics.latency.observe(nanoseconds: 30_000_000_000)

        let sample = DashboardSample(metrics)
        XCTAssertEqual(sample.requests, 13)
        XCTAssertEqual(sample.requestsByClass, [0, 9, 0, 3, 1])
        XCTAssertEqual(sample.openConnections, 4)
        XCTAssertEqual(sample.openWebSockets, 1)
        XCTAssertEqual(sample.faults, ["timeout": 2])
        XCTAssertEqual(sample.reloads, 1)
        XCTAssertEqual(sample.latencyBuckets.first, 3)
        XCTAssertEqual(sample.latencyBuckets.last, 4)
    }

    func testPercentilesInterpolateInsideTheirBucketOverAWindow() {
        var earlier = DashboardSample()
        earlier.latencyBuckets = Array(repeating: 5, count: LatencyHistogram.bounds.count + 1)
        var now = earlier
        // 100 more requests: 50 under 5 ms, 40 in (5, 10] ms, 10 in (10, 25] ms.
        for index in now.latencyBuckets.indices {
            now.latencyBuckets[index] += index == 0 ? 50 : index == 1 ? 90 : 100
        }
        XCTAssertEqual(now.latencyQuantile(0.5, since: earlier)!, 0.005, accuracy: 1e-9)
        XCTAssertEqual(now.latencyQuantile(0.25, since: earlier)!, 0.0025, accuracy: 1e-9)
        XCTAssertEqual(now.latencyQuantile(0.9, since: earlier)!, 0.01, accuracy: 1e-9)
        XCTAssertEqual(now.latencyQuantile(0.99, since: earlier)!, 0.0235, accuracy: 1e-9)
        XCTAssertNil(earlier.latencyQuantile(0.5, since: earlier))
    }

    func testPastTheLastBoundIsTheLastBound() {
        var now = DashboardSample()
        now.latencyBuckets[LatencyHistogram.bounds.count] = 1
        XCTAssertEqual(now.latencyQuantile(0.99, since: DashboardSample()), 10)
    }

    func testSkipsCommentsAndLinesItCannotRead() {
        let text = """
            # TYPE moonwire_open_connections gauge
            moonwire_open_connections 2.0
            garbage
            moonwire_http_requests_total{method="GET",route="/",status="x"} 5
            moonwire_http_requests_total{method="GET",route="/",status="200"} not-a-number

            """
        let sample = DashboardSample(exposition: Array(text.utf8))
        XCTAssertEqual(sample.openConnections, 2)
        XCTAssertEqual(sample.requests, 5)
        XCTAssertEqual(sample.requestsByClass, [0, 0, 0, 0, 0])
    }
}
