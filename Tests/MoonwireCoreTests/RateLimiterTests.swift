import Dispatch
import MoonwireCore
import NIOConcurrencyHelpers
import XCTest

/// moonwire.limit's token buckets on a clock the test moves: no sleeping.
final class RateLimiterTests: XCTestCase {
    /// A clock in nanoseconds that only the test advances.
    private final class Clock: Sendable {
        private let now = NIOLockedValueBox<UInt64>(1_000_000_000)
        func advance(_ seconds: Double) { now.withLockedValue { $0 += UInt64(seconds * 1e9) } }
        var read: @Sendable () -> UInt64 { { self.now.withLockedValue { $0 } } }
    }

    private func retryAfter(_ decision: RateLimiter.Decision) -> Double? {
        if case .refused(let seconds) = decision { return seconds }
        return nil
    }

    func testANewKeyHasItsBurstThenOneTokenPerIntervalOfTheRate() {
        let clock = Clock()
        let limiter = RateLimiter(clock: clock.read)
        for _ in 0..<5 { XCTAssertEqual(limiter.take("ip", rate: 2, burst: 5), .allowed) }
        XCTAssertEqual(retryAfter(limiter.take("ip", rate: 2, burst: 5))!, 0.5, accuracy: 1e-9)
        clock.advance(0.25)
        XCTAssertEqual(retryAfter(limiter.take("ip", rate: 2, burst: 5))!, 0.25, accuracy: 1e-9, "half a token is there")
        clock.advance(0.25)
        XCTAssertEqual(limiter.take("ip", rate: 2, burst: 5), .allowed)
        XCTAssertNotNil(retryAfter(limiter.take("ip", rate: 2, burst: 5)))
        XCTAssertEqual(limiter.take("other", rate: 2, burst: 5), .allowed, "keys have their own buckets")
    }

    func testABucketRefillsNoHigherThanItsBurst() {
        let clock = Clock()
        let limiter = RateLimiter(clock: clock.read)
        XCTAssertEqual(limiter.take("k", rate: 10, burst: 3), .allowed)
        clock.advance(3600)
        for _ in 0..<3 { XCTAssertEqual(limiter.take("k", rate: 10, burst: 3), .allowed) }
        XCTAssertEqual(retryAfter(limiter.take("k", rate: 10, burst: 3))!, 0.1, accuracy: 1e-9)
    }

    func testRefusalsDoNotSpendTokens() {
        let clock = Clock()
        let limiter = RateLimiter(clock: clock.read)
        XCTAssertEqual(limiter.take("k", rate: 1, burst: 1), .allowed)
        for _ in 0..<100 { XCTAssertNotNil(retryAfter(limiter.take("k", rate: 1, burst: 1))) }
        clock.advance(1)
        XCTAssertEqual(limiter.take("k", rate: 1, burst: 1), .allowed, "one second after the last token, one is back")
    }

    func testFullBucketsAreDroppedSoIdleKeysCostNothing() {
        let clock = Clock()
        let limiter = RateLimiter(clock: clock.read)
        for key in 0..<2000 { _ = limiter.take("client \(key)", rate: 1, burst: 10) }
        XCTAssertEqual(limiter.count, 2000, "each bucket is one token short of full")
        clock.advance(1)
        for key in 0..<2000 { _ = limiter.take("later \(key)", rate: 1, burst: 10) }
        XCTAssertLessThan(limiter.count, 4000, "a sweep dropped the refilled buckets of the first keys")
        clock.advance(1)
        for key in 0..<4000 { _ = limiter.take("last \(key)", rate: 1, burst: 10) }
        XCTAssertLessThanOrEqual(limiter.count, 4000 + 1024)
    }

    func testAtTheCapANewKeyIsRefusedUntilABucketRefillsAndHeldKeysGoOn() {
        let clock = Clock()
        let limiter = RateLimiter(capacity: 3, clock: clock.read)
        for key in ["a", "b", "c"] { XCTAssertEqual(limiter.take(key, rate: 1, burst: 4), .allowed) }
        // Each bucket is full again one second after its take.
        XCTAssertEqual(retryAfter(limiter.take("d", rate: 1, burst: 4))!, 1, accuracy: 1e-9)
        XCTAssertEqual(limiter.take("a", rate: 1, burst: 4), .allowed, "a key already held keeps its bucket")
        clock.advance(0.5)
        XCTAssertEqual(retryAfter(limiter.take("e", rate: 1, burst: 4))!, 0.5, accuracy: 1e-9)
        clock.advance(0.5)
        XCTAssertEqual(limiter.take("d", rate: 1, burst: 4), .allowed, "b and c refilled and were dropped")
        XCTAssertLessThanOrEqual(limiter.count, 3)
    }

    func testTheLatestRateAndBurstApply() {
        let clock = Clock()
        let limiter = RateLimiter(clock: clock.read)
        for _ in 0..<10 { XCTAssertEqual(limiter.take("k", rate: 1, burst: 10), .allowed) }
        XCTAssertEqual(retryAfter(limiter.take("k", rate: 4, burst: 10))!, 0.25, accuracy: 1e-9)
    }

    func testBucketsAreSharedByConcurrentCallers() {
        let limiter = RateLimiter(clock: { 5_000_000_000 })
        let allowed = NIOLockedValueBox(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<500 where limiter.take("shared", rate: 1, burst: 100) == .allowed {
                allowed.withLockedValue { $0 += 1 }
            }
        }
        XCTAssertEqual(allowed.withLockedValue { $0 }, 100, "the clock stands still: exactly the burst gets through")
    }
}
