import XCTest

@testable import MoonwireCore

/// Prometheus name rules, the families' type and label checks, the latency histogram's text,
/// and the method label, without a server.
final class MetricsTests: XCTestCase {
    func testMetricNames() {
        for good in ["a", "_x", "http_requests_total", "ns:sub_total", "A9"] {
            XCTAssertTrue(MetricNames.isValidMetricName(good), good)
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a.b"] { XCTAssertFalse(MetricNames.isValidMetricName(bad), bad) }
    }

    func testLabelNamesAndValues() {
        XCTAssertTrue(MetricNames.isValidLabelName("route"))
        for bad in ["a:b", "__reserved", "le", "quantile", "1x", ""] { XCTAssertFalse(MetricNames.isValidLabelName(bad), bad) }
        XCTAssertTrue(MetricNames.isValidLabelValue("any text, \"quoted\" é"))
        XCTAssertFalse(MetricNames.isValidLabelValue("new\nline"))
        XCTAssertFalse(MetricNames.isValidLabelValue(String(repeating: "x", count: 1025)))
    }

    func testCheckSortsLabelsAndRefusesDuplicates() throws {
        let sorted = try MetricNames.check(name: "x", labels: [("b", "1"), ("a", "2")], kind: .counter)
        XCTAssertEqual(sorted.map(\.0), ["a", "b"])
        XCTAssertThrowsError(try MetricNames.check(name: "x", labels: [("a", "1"), ("a", "2")], kind: .counter)) {
            XCTAssertEqual("\($0)", "label \"a\" given twice")
        }
        XCTAssertThrowsError(try MetricNames.check(name: "x-y", labels: [], kind: .gauge))
    }

    func testFamiliesKeepTheirKindLabelsAndBuckets() throws {
        let families = MetricFamilies()
        try families.claim(name: "jobs", kind: .counter, labelNames: ["queue"])
        try families.claim(name: "jobs", kind: .counter, labelNames: ["queue"])
        XCTAssertThrowsError(try families.claim(name: "jobs", kind: .gauge, labelNames: ["queue"])) {
            XCTAssertEqual("\($0)", "metric \"jobs\" is already a counter")
        }
        XCTAssertThrowsError(try families.claim(name: "jobs", kind: .counter, labelNames: [])) {
            XCTAssertEqual("\($0)", "metric \"jobs\" already has labels queue")
        }
        try families.claim(name: "sizes", kind: .histogram, labelNames: [], buckets: [1, 2])
        XCTAssertThrowsError(try families.claim(name: "sizes", kind: .histogram, labelNames: [], buckets: [1, 3]))
    }

    func testServerFamiliesAreTaken() {
        let metrics = ServerMetrics()
        XCTAssertThrowsError(try metrics.families.claim(name: "moonwire_open_connections", kind: .counter, labelNames: []))
    }

    func testLatencyHistogramText() {
        let histogram = LatencyHistogram(name: "lat")
        histogram.observe(nanoseconds: 3_000_000)  // 3 ms: the 0.005 bucket
        histogram.observe(nanoseconds: 200_000_000)  // 200 ms: the 0.25 bucket
        histogram.observe(nanoseconds: 20_000_000_000)  // 20 s: only +Inf
        var buffer: [UInt8] = []
        histogram.emit(into: &buffer)
        let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "# TYPE lat histogram")
        XCTAssertTrue(lines.contains("lat_bucket{le=\"0.005\"} 1"))
        XCTAssertTrue(lines.contains("lat_bucket{le=\"0.1\"} 1"))
        XCTAssertTrue(lines.contains("lat_bucket{le=\"0.25\"} 2"))
        XCTAssertTrue(lines.contains("lat_bucket{le=\"10\"} 2"))
        XCTAssertTrue(lines.contains("lat_bucket{le=\"+Inf\"} 3"))
        XCTAssertEqual(lines.suffix(2), ["lat_sum 20.203", "lat_count 3"])
    }

    func testUnknownMethodsShareOneLabel() {
        XCTAssertEqual(LoopMetrics.methodLabel("GET"), "GET")
        XCTAssertEqual(LoopMetrics.methodLabel("PROPFIND"), "other")
    }
}
