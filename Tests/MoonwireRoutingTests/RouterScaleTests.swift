// Large route tables: correctness with 1000 routes, and (only when MOONWIRE_ROUTER_BENCH=1)
// a throughput comparison of the first and the last route, which the prefix index keeps
// close to 1. The benchmark is opt-in because timing belongs to quiet machines, not CI.
import Foundation
import MoonwireRouting
import XCTest

final class RouterScaleTests: XCTestCase {
    /// `/r1/(\d+)` ... `/r1000/(\d+)`: prefixes that share a lot and differ late.
    private func numberedTable() throws -> Router<Int> {
        let router = Router<Int>()
        for n in 1...1000 { try router.addRoute(host: nil, methods: ["GET"], path: "/r\(n)/(\\d+)", handler: n) }
        return router
    }

    /// Varied shapes, named captures and distinct literal prefixes.
    private func mixedTable() throws -> Router<Int> {
        let router = Router<Int>()
        for n in 1...1000 {
            let path =
                switch n % 4 {
                case 0: "/api/v\(n)/users/(?<id>\\d+)"
                case 1: "/static\(n)/(?<file>.+)\\.(?<ext>css|js)"
                case 2: "/r\(n)/(\\d+)"
                default: "/page\(n)/(?<lang>en|fr)"
                }
            try router.addRoute(host: nil, methods: ["GET"], path: path, handler: n)
        }
        return router
    }

    private func mixedPath(_ n: Int) -> String {
        switch n % 4 {
        case 0: "/api/v\(n)/users/77"
        case 1: "/static\(n)/app.min.js"
        case 2: "/r\(n)/55"
        default: "/page\(n)/fr"
        }
    }

    func testThousandRoutesResolveFirstAndLast() throws {
        let router = try numberedTable()
        for n in [1, 2, 10, 100, 999, 1000] {
            let found = router.match(host: "", method: "GET", path: "/r\(n)/55")
            guard case .matched(let handler, let params) = found.outcome else { return XCTFail("no match for \(n)") }
            XCTAssertEqual(handler, n)
            XCTAssertEqual(params.numbered, [1: "55"])
        }
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/r1001/5").outcome, .notFound)
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/r1/x").outcome, .notFound)
        XCTAssertEqual(router.match(host: "", method: "POST", path: "/r1000/5").outcome, .methodNotAllowed(allowed: ["GET", "HEAD"]))
    }

    func testMixedThousandRoutesResolveEveryRoute() throws {
        let router = try mixedTable()
        for n in 1...1000 {
            guard case .matched(let handler, let params) = router.match(host: "", method: "GET", path: mixedPath(n)).outcome
            else { return XCTFail("no match for \(n)") }
            XCTAssertEqual(handler, n)
            XCTAssertFalse(params.numbered.isEmpty)
        }
        let last = router.match(host: "", method: "GET", path: "/api/v1000/users/77")
        XCTAssertEqual(last.outcome, .matched(1000, params: params(numbered: [1: "77"], named: ["id": "77"])))
    }

    func testBenchmarkFirstVersusLastRoute() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["MOONWIRE_ROUTER_BENCH"] == "1", "set MOONWIRE_ROUTER_BENCH=1")
        let numbered = try numberedTable()
        let mixed = try mixedTable()
        for (name, router, first, last) in [
            ("numbered 1st vs 1000th", numbered, "/r1/55", "/r1000/55"),
            ("mixed 1st vs 1000th", mixed, mixedPath(1), mixedPath(1000)),
            ("mixed same shape 1st vs 997th", mixed, mixedPath(1), mixedPath(997)),
        ] {
            let firstRate = lookupsPerSecond { router.match(host: "", method: "GET", path: first) }
            let lastRate = lookupsPerSecond { router.match(host: "", method: "GET", path: last) }
            print(String(format: "router bench %@: %.0f/s vs %.0f/s, ratio %.2f", name, firstRate, lastRate, lastRate / firstRate))
            XCTAssertGreaterThanOrEqual(lastRate / firstRate, 0.8, name)
        }
        // For scale: what the index saves over running every route's regex in order.
        let regexes = try (1...1000).map { try Regex("/r\($0)/(\\d+)", options: [.wholeSubject, .utf]) }
        let matcher = RegexMatcher()
        let scanRate = lookupsPerSecond(lookups: 2_000) {
            regexes.firstIndex { (try? $0.match("/r1000/55", using: matcher)) != nil }
        }
        print(String(format: "router bench naive linear scan to the 1000th route: %.0f/s", scanRate))
    }

    /// Best of several rounds after a warm-up, so a scheduler hiccup does not decide the ratio.
    private func lookupsPerSecond<Result>(lookups: Int = 200_000, _ lookup: () -> Result) -> Double {
        for _ in 0..<lookups / 10 { blackHole(lookup()) }
        var best = Duration.seconds(1_000)
        for _ in 0..<5 {
            let started = ContinuousClock.now
            for _ in 0..<lookups { blackHole(lookup()) }
            best = min(best, ContinuousClock.now - started)
        }
        let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
        return Double(lookups) / seconds
    }

    private func params(numbered: [Int: String], named: [String: String]) -> RouteParams {
        var params = RouteParams()
        params.numbered = numbered
        params.named = named
        return params
    }
}

/// Keeps the optimizer from discarding a benchmarked result.
@inline(never)
private func blackHole<Value>(_ value: Value) {
    withExtendedLifetime(value) {}
}
