// Regex DoS: catastrophic patterns and hostile subjects must give up within the configured
// limits, quickly, with an error that says which limit fired. Time bounds are generous on
// purpose (no tight timing asserts): without the limits these cases run for minutes or more.
import CPCRE2
import MoonwireRouting
import XCTest

final class RegexLimitTests: XCTestCase {
    private let evilSubject = String(repeating: "a", count: 30) + "b"

    func testCatastrophicBacktrackingStopsAtTheMatchLimit() throws {
        let regex = try Regex("(a+)+$")
        let started = ContinuousClock.now
        XCTAssertThrowsError(try regex.match(evilSubject, using: RegexMatcher())) { error in
            guard let error = error as? RegexError else { return XCTFail("not a RegexError: \(error)") }
            XCTAssertEqual(error.kind, .matchLimit)
            XCTAssertTrue(error.isResourceLimit)
            XCTAssertEqual(error.message, "match limit exceeded")
            XCTAssertEqual(error.description, "pattern \"(a+)+$\" gave up at subject offset 0: match limit exceeded")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
    }

    func testTheInterpreterIsBoundedToo() throws {
        // A match-time ANCHORED option makes PCRE2 bypass the JIT code and interpret.
        let regex = try Regex("(a+)+$")
        let matcher = RegexMatcher()
        let started = ContinuousClock.now
        XCTAssertThrowsError(try regex.match(evilSubject, options: PCRE2_ANCHORED, using: matcher)) { error in
            XCTAssertTrue((error as? RegexError)?.isResourceLimit ?? false, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
    }

    func testDepthLimitStopsDeepInterpretedRecursion() throws {
        let regex = try Regex("(a|b)*c")
        let matcher = RegexMatcher(limits: .init(matchLimit: 100_000_000, depthLimit: 100))
        let subject = String(repeating: "ab", count: 5_000)
        XCTAssertThrowsError(try regex.match(subject, options: PCRE2_ANCHORED, using: matcher)) { error in
            XCTAssertEqual((error as? RegexError)?.kind, .depthLimit, "\(error)")
        }
    }

    func testJITStackIsBounded() throws {
        let regex = try Regex("(?:(a)|(b))*c")
        try XCTSkipUnless(regex.isJITCompiled, "no JIT on this platform")
        let matcher = RegexMatcher(limits: .init(matchLimit: 100_000_000, jitStackSize: 32 * 1024))
        let subject = String(repeating: "ab", count: 50_000) + "c"
        XCTAssertThrowsError(try regex.match(subject, using: matcher)) { error in
            XCTAssertEqual((error as? RegexError)?.kind, .jitStackLimit, "\(error)")
        }
    }

    func testLimitsAreConfigurable() throws {
        // Exponential, but small enough that the default limit lets it finish (with no match).
        let regex = try Regex("(a+)+$")
        let subject = String(repeating: "a", count: 12) + "b"
        let strict = RegexMatcher(limits: .init(matchLimit: 10))
        XCTAssertThrowsError(try regex.match(subject, using: strict)) { error in
            XCTAssertEqual((error as? RegexError)?.kind, .matchLimit)
        }
        XCTAssertNil(try regex.match(subject, using: RegexMatcher()))
        XCTAssertEqual(strict.limits.matchLimit, 10)
        XCTAssertEqual(RegexMatcher().limits, RegexMatcher.Limits())
    }

    func testOrdinaryWorkOnLargeSubjectsStaysUnderTheDefaults() throws {
        let matcher = RegexMatcher()
        let subject = String(repeating: "word ", count: 200_000) + "end"
        XCTAssertEqual(try Regex("end$").match(subject, using: matcher)?.range, 1_000_000..<1_000_003)
        XCTAssertEqual(try Regex("\\w+").allMatches(in: subject, using: matcher).count, 200_001)
    }

    func testRouterTreatsARouteThatHitsALimitAsNotMatching() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: [], path: "/(a+)+$", handler: "evil")
        try router.addRoute(host: nil, methods: [], path: "/.*", handler: "fallback")
        let started = ContinuousClock.now
        let found = router.match(host: "", method: "GET", path: "/" + evilSubject)
        XCTAssertEqual(found.outcome, .matched("fallback", params: RouteParams()))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
    }
}
