// Compiling and matching single patterns: errors, captures, options, and sharing one
// compiled pattern between threads.
import CPCRE2
import Dispatch
import MoonwireRouting
import XCTest

final class RegexTests: XCTestCase {
    private let matcher = RegexMatcher()

    func testCompileErrorCarriesMessageOffsetAndPattern() {
        XCTAssertThrowsError(try Regex("(ab")) { error in
            guard let error = error as? RegexError else { return XCTFail("not a RegexError: \(error)") }
            XCTAssertEqual(error.kind, .invalidPattern)
            XCTAssertEqual(error.pattern, "(ab")
            XCTAssertEqual(error.message, "missing closing parenthesis")
            XCTAssertEqual(error.offset, 3)
            XCTAssertFalse(error.isResourceLimit)
            XCTAssertEqual(error.description, "invalid pattern \"(ab\": missing closing parenthesis at offset 3")
        }
        XCTAssertThrowsError(try Regex("/users/[0-9")) { error in
            XCTAssertEqual((error as? RegexError)?.message, "missing terminating ] for character class")
            XCTAssertEqual((error as? RegexError)?.offset, 11)
        }
        XCTAssertThrowsError(try Regex("a{2,1}")) { error in
            XCTAssertEqual((error as? RegexError)?.offset, 5)
        }
    }

    func testGroupCountAndNameTable() throws {
        let regex = try Regex("/(?<user>\\w+)/(\\d+)/(?<tab>[a-z]+)?")
        XCTAssertEqual(regex.groupCount, 3)
        XCTAssertEqual(regex.names.map { "\($0.name)=\($0.group)" }, ["tab=3", "user=1"])
        XCTAssertEqual(regex.groupNumber(named: "tab"), 3)
        XCTAssertNil(regex.groupNumber(named: "missing"))
        XCTAssertEqual(try Regex("plain").groupCount, 0)
        XCTAssertTrue(try Regex("plain").names.isEmpty)
    }

    func testNamedAndNumberedCaptures() throws {
        let regex = try Regex("/(?<user>\\w+)/posts/(\\d+)")
        let subject = "GET /alice/posts/42 HTTP"
        let found = try XCTUnwrap(regex.match(subject, using: matcher))
        XCTAssertEqual(text(found.range, in: subject), "/alice/posts/42")
        XCTAssertEqual(found.ranges.count, 3)
        XCTAssertEqual(found[1].map { text($0, in: subject) }, "alice")
        XCTAssertEqual(found[2].map { text($0, in: subject) }, "42")
        XCTAssertEqual(found["user"].map { text($0, in: subject) }, "alice")
        XCTAssertNil(found["nope"])
        XCTAssertNil(found[7])
    }

    func testUnsetGroupsAreNilAndEmptyGroupsAreEmpty() throws {
        let regex = try Regex("(a)|(b)(x?)")
        let found = try XCTUnwrap(regex.match("b", using: matcher))
        XCTAssertNil(found[1])
        XCTAssertEqual(found[2], 0..<1)
        XCTAssertEqual(found[3], 1..<1)
    }

    func testDuplicateNamesResolveToTheGroupThatMatched() throws {
        let regex = try Regex("(?J)(?<id>\\d+)|x(?<id>[a-z]+)")
        let subject = "xabc"
        let found = try XCTUnwrap(regex.match(subject, using: matcher))
        XCTAssertEqual(found["id"].map { text($0, in: subject) }, "abc")
    }

    func testOptions() throws {
        XCTAssertNil(try Regex("abc").match("xABCx", using: matcher))
        XCTAssertEqual(try Regex("abc", options: [.caseless]).match("xABCx", using: matcher)?.range, 1..<4)
        let whole = try Regex("a|ab", options: [.wholeSubject])
        XCTAssertEqual(try whole.match("ab", using: matcher)?.range, 0..<2, "end anchoring backtracks into ab")
        XCTAssertNil(try whole.match("abc", using: matcher))
        XCTAssertNil(try whole.match("xab", using: matcher))
        XCTAssertEqual(try Regex("^b$", options: [.multiline]).match("a\nb\nc", using: matcher)?.range, 2..<3)
        XCTAssertEqual(try Regex("a.b", options: [.dotAll]).match("a\nb", using: matcher)?.range, 0..<3)
        XCTAssertEqual(try Regex("a b # comment", options: [.extended]).match("ab", using: matcher)?.range, 0..<2)
    }

    func testUTFModeMatchesCharactersAndSurvivesInvalidBytes() throws {
        let utf = try Regex("^.$")
        XCTAssertEqual(try utf.match("é", using: matcher)?.range, 0..<2)
        XCTAssertNil(try Regex("^.$", options: []).match("é", using: matcher), "bytes mode: é is two bytes")
        let invalid: [UInt8] = [0x61, 0xFF, 0xFE, 0x62]
        let found = try invalid.withUnsafeBytes { try Regex("b").match($0, using: matcher) }
        XCTAssertEqual(found?.range, 3..<4)
        XCTAssertNil(try invalid.withUnsafeBytes { try Regex("a.b").match($0, using: matcher) })
    }

    func testSubjectsWithNulBytesAndEmptySubjects() throws {
        let subject: [UInt8] = [0x61, 0x00, 0x62]
        XCTAssertEqual(try subject.withUnsafeBytes { try Regex("\\x00b").match($0, using: matcher) }?.range, 1..<3)
        XCTAssertEqual(try Regex("x*").match("", using: matcher)?.range, 0..<0)
        XCTAssertNil(try Regex("x").match("", using: matcher))
        XCTAssertEqual(try Regex("").match("abc", using: matcher)?.range, 0..<0)
    }

    func testStartOffset() throws {
        let regex = try Regex("\\d+")
        XCTAssertEqual(try regex.match("12 34 56", from: 2, using: matcher)?.range, 3..<5)
        XCTAssertNil(try regex.match("12 34", from: 5, using: matcher))
        XCTAssertThrowsError(try regex.match("12", from: 3, using: matcher)) { error in
            XCTAssertEqual((error as? RegexError)?.kind, .matchFailed)
        }
    }

    func testMatcherGrowsForPatternsWithManyGroups() throws {
        let pattern = String(repeating: "(.)", count: 40)
        let subject = String(repeating: "z", count: 39) + "y"
        let found = try XCTUnwrap(Regex(pattern).match(subject, using: matcher))
        XCTAssertEqual(found.ranges.count, 41)
        XCTAssertEqual(found[40], 39..<40)
    }

    func testMatchingWithoutAMatcherGivesTheSameAnswers() throws {
        let regex = try Regex("(?<word>[a-z]+)(\\d)?")
        for subject in ["abc1", "  xy", "123", ""] {
            XCTAssertEqual(try regex.match(subject), try regex.match(subject, using: matcher), subject)
        }
        XCTAssertEqual(try regex.match("ab cd", from: 2)?.range, 3..<5)
        let retry = try regex.match("ab", from: 0, options: PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED)
        XCTAssertEqual(retry?.range, 0..<2)
        XCTAssertThrowsError(try Regex("(a+)+$").match(String(repeating: "a", count: 30) + "b")) { error in
            XCTAssertEqual((error as? RegexError)?.kind, .matchLimit, "default limits apply without a matcher")
        }
    }

    func testOneCompiledRegexSharedByManyThreads() throws {
        let regex = try Regex("/items/(?<id>\\d+)")
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            // Half the workers bring their own matcher, half use the shared match context.
            let matcher = worker.isMultiple(of: 2) ? RegexMatcher() : nil
            for number in 0..<2_000 {
                let subject = "/items/\(worker * 10_000 + number)"
                let id = (try? regex.match(subject, using: matcher))?["id"].map { text($0, in: subject) }
                if id != String(worker * 10_000 + number) { failures.record() }
            }
        }
        XCTAssertEqual(failures.count, 0)
    }
}

/// Counts failures reported from several threads.
private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded = 0
    var count: Int { lock.withLock { recorded } }
    func record() { lock.withLock { recorded += 1 } }
}

/// The text of `range` (byte offsets) in `subject`.
func text(_ range: Range<Int>, in subject: String) -> String {
    String(decoding: Array(subject.utf8)[range], as: UTF8.self)
}
