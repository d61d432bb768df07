import MoonwireCore
import XCTest

final class ListenerRebindBackoffTests: XCTestCase {
    private func settings(interval: Double, attempts: Int) -> WatchdogSettings {
        var settings = WatchdogSettings()
        settings.enabled = true
        settings.interval = interval
        settings.attempts = attempts
        return settings
    }

    func testTheFirstAttemptIsAtOnceThenTheWaitDoublesUpToAMinute() {
        var backoff = ListenerRebindBackoff(settings: settings(interval: 5, attempts: 0))
        let waits = (0..<7).map { _ in backoff.next() }
        XCTAssertEqual(waits, [0, 5, 10, 20, 40, 60, 60].map { .retry(after: $0) })
        XCTAssertEqual(backoff.attempts, 7)
    }

    func testZeroAttemptsTriesForEver() {
        var backoff = ListenerRebindBackoff(settings: settings(interval: 1, attempts: 0))
        for _ in 0..<10_000 { XCTAssertNotEqual(backoff.next(), .giveUp) }
        XCTAssertEqual(backoff.next(), .retry(after: 60))
    }

    func testItGivesUpAfterTheAttempts() {
        var backoff = ListenerRebindBackoff(settings: settings(interval: 0.5, attempts: 3))
        XCTAssertEqual(backoff.next(), .retry(after: 0))
        XCTAssertEqual(backoff.next(), .retry(after: 0.5))
        XCTAssertEqual(backoff.next(), .retry(after: 1))
        XCTAssertEqual(backoff.next(), .giveUp)
        XCTAssertEqual(backoff.next(), .giveUp)
        XCTAssertEqual(backoff.attempts, 3)
    }

    func testAnIntervalLongerThanAMinuteIsKept() {
        var backoff = ListenerRebindBackoff(settings: settings(interval: 90, attempts: 0))
        XCTAssertEqual([backoff.next(), backoff.next(), backoff.next()], [.retry(after: 0), .retry(after: 90), .retry(after: 90)])
    }
}
