// The helpers behind moonwire.re.find / gmatch / gsub: search from an offset, iterate all
// matches (including PCRE2's empty-match stepping), and substitution.
import MoonwireRouting
import XCTest

final class RegexSearchTests: XCTestCase {
    private let matcher = RegexMatcher()

    private func ranges(_ pattern: String, _ subject: String, from offset: Int = 0) throws -> [Range<Int>] {
        try Regex(pattern).allMatches(in: subject, from: offset, using: matcher).map(\.range)
    }

    func testFindFromAnOffset() throws {
        let regex = try Regex("o")
        XCTAssertEqual(try regex.match("foo boo", using: matcher)?.range, 1..<2)
        XCTAssertEqual(try regex.match("foo boo", from: 3, using: matcher)?.range, 5..<6)
        XCTAssertNil(try regex.match("foo boo", from: 7, using: matcher))
    }

    func testAllMatchesInOrder() throws {
        XCTAssertEqual(try ranges("\\d+", "a1 22 333"), [1..<2, 3..<5, 6..<9])
        XCTAssertEqual(try ranges("\\d+", "a1 22 333", from: 4), [4..<5, 6..<9])
        XCTAssertEqual(try ranges("x", "abc"), [])
        let pairs = try Regex("(\\w)=(\\w)?").allMatches(in: "a=1 b= c=3", using: matcher)
        XCTAssertEqual(pairs.map { $0[2] }, [2..<3, nil, 9..<10])
    }

    func testEmptyMatchesStepOneCharacterAndNeverLoop() throws {
        XCTAssertEqual(try ranges("x*", "ab"), [0..<0, 1..<1, 2..<2])
        XCTAssertEqual(try ranges("a*", "baaa"), [0..<0, 1..<4, 4..<4])
        XCTAssertEqual(try ranges("a*?", "aa"), [0..<0, 0..<1, 1..<1, 1..<2, 2..<2])
        XCTAssertEqual(try ranges("\\b", "hi there"), [0..<0, 2..<2, 3..<3, 8..<8])
        XCTAssertEqual(try ranges("", ""), [0..<0])
    }

    func testEmptyMatchesStepWholeUTF8Characters() throws {
        XCTAssertEqual(try ranges("", "é€"), [0..<0, 2..<2, 5..<5])
        let bytes = try Regex("", options: []).allMatches(in: "é", using: matcher).map(\.range)
        XCTAssertEqual(bytes, [0..<0, 1..<1, 2..<2], "bytes mode steps bytes")
    }

    func testEmptyMatchesStepOverCRLFWhenItIsTheNewline() throws {
        XCTAssertEqual(try ranges("(*CRLF)", "\r\n"), [0..<0, 2..<2])
        XCTAssertEqual(try ranges("", "\r\n"), [0..<0, 1..<1, 2..<2], "LF newline: CR is a character")
    }

    func testCursorIsAResumableValue() throws {
        let regex = try Regex("[a-z]+")
        let subject = Array("one two three".utf8)
        func word(_ found: RegexMatch?) -> String? {
            found.map { String(decoding: subject[$0.range], as: UTF8.self) }
        }
        try subject.withUnsafeBytes { bytes in
            var cursor = RegexMatchCursor()
            XCTAssertEqual(word(try cursor.next(of: regex, in: bytes, using: matcher)), "one")
            XCTAssertEqual(cursor.offset, 3)
            var copy = cursor  // a saved cursor resumes from where it was saved
            XCTAssertEqual(word(try copy.next(of: regex, in: bytes, using: matcher)), "two")
            XCTAssertEqual(word(try copy.next(of: regex, in: bytes, using: matcher)), "three")
            XCTAssertNil(try copy.next(of: regex, in: bytes, using: matcher))
            XCTAssertNil(try copy.next(of: regex, in: bytes, using: matcher), "stays exhausted")
            XCTAssertEqual(word(try cursor.next(of: regex, in: bytes, using: matcher)), "two")
            var late = RegexMatchCursor(from: 9)
            XCTAssertEqual(word(try late.next(of: regex, in: bytes, using: matcher)), "hree")
        }
    }

    func testSubstituteGlobalAndFirstOnly() throws {
        let regex = try Regex("(?<key>\\w+)=(\\d+)")
        let global = try regex.replacingMatches(in: "a=1, b=2", with: "${key}:$2", using: matcher)
        XCTAssertEqual(String(decoding: global.bytes, as: UTF8.self), "a:1, b:2")
        XCTAssertEqual(global.count, 2)
        let first = try regex.replacingMatches(in: "a=1, b=2", with: "[$0]", global: false, using: matcher)
        XCTAssertEqual(String(decoding: first.bytes, as: UTF8.self), "[a=1], b=2")
        XCTAssertEqual(first.count, 1)
        let fromOffset = try regex.replacingMatches(in: "a=1, b=2", with: "X", from: 3, using: matcher)
        XCTAssertEqual(String(decoding: fromOffset.bytes, as: UTF8.self), "a=1, X")
    }

    func testSubstituteExtendedSyntaxUnsetGroupsAndNoMatch() throws {
        let upper = try Regex("(\\w+)").replacingMatches(in: "hi you", with: "\\U$1", using: matcher)
        XCTAssertEqual(String(decoding: upper.bytes, as: UTF8.self), "HI YOU")
        let unset = try Regex("(a)|(b)").replacingMatches(in: "ab", with: "<$1$2>", using: matcher)
        XCTAssertEqual(String(decoding: unset.bytes, as: UTF8.self), "<a><b>")
        let conditional = try Regex("(a)?b").replacingMatches(in: "ab b", with: "${1:+A:-}", using: matcher)
        XCTAssertEqual(String(decoding: conditional.bytes, as: UTF8.self), "A -")
        let none = try Regex("z").replacingMatches(in: "abc", with: "y", using: matcher)
        XCTAssertEqual(none.bytes, Array("abc".utf8))
        XCTAssertEqual(none.count, 0)
    }

    func testSubstituteEmptyMatchesAndGrowingOutput() throws {
        let between = try Regex("x*").replacingMatches(in: "ab", with: "-", using: matcher)
        XCTAssertEqual(String(decoding: between.bytes, as: UTF8.self), "-a-b-")
        let subject = String(repeating: "a", count: 1_000)
        let grown = try Regex("a").replacingMatches(in: subject, with: "0123456789", using: matcher)
        XCTAssertEqual(grown.bytes.count, 10_000)
        XCTAssertEqual(grown.count, 1_000)
    }

    func testSubstituteOnBinarySubject() throws {
        let subject: [UInt8] = [0x00, 0x41, 0x00, 0x41]
        let replacement = Array("b".utf8)
        let result = try subject.withUnsafeBytes { subjectBytes in
            try replacement.withUnsafeBytes { replacementBytes in
                try Regex("A", options: []).replacingMatches(in: subjectBytes, with: replacementBytes, using: matcher)
            }
        }
        XCTAssertEqual(result.bytes, [0x00, 0x62, 0x00, 0x62])
    }

    func testInvalidReplacementReportsItsOffset() throws {
        let regex = try Regex("(a)")
        XCTAssertThrowsError(try regex.replacingMatches(in: "a", with: "ok ${9}", using: matcher)) { error in
            guard let error = error as? RegexError else { return XCTFail("not a RegexError: \(error)") }
            XCTAssertEqual(error.kind, .invalidReplacement)
            XCTAssertEqual(error.message, "unknown substring")
            XCTAssertEqual(error.offset, 7)
            XCTAssertTrue(error.description.hasPrefix("invalid replacement for pattern \"(a)\""), error.description)
        }
        XCTAssertThrowsError(try regex.replacingMatches(in: "a", with: "${1", using: matcher)) { error in
            XCTAssertEqual((error as? RegexError)?.kind, .invalidReplacement)
        }
    }

    func testSubstituteObeysLimits() throws {
        let regex = try Regex("(a+)+$")
        XCTAssertThrowsError(
            try regex.replacingMatches(in: String(repeating: "a", count: 30) + "b", with: "x", using: matcher)
        ) { error in
            XCTAssertEqual((error as? RegexError)?.kind, .matchLimit)
        }
    }
}
