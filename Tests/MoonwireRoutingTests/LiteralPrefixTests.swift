// The literal prefixes the route index files patterns under: right for plain routes, and
// empty (never wrong) wherever the syntax could make a leading literal optional or add
// another top-level alternative.
@testable import MoonwireRouting
import XCTest

final class LiteralPrefixTests: XCTestCase {
    private func prefix(_ pattern: String) -> String {
        String(decoding: LiteralPrefix.of(pattern), as: UTF8.self)
    }

    func testPlainRoutes() {
        XCTAssertEqual(prefix("/users/(\\d+)"), "/users/")
        XCTAssertEqual(prefix("/users/(?<id>\\d+)/posts"), "/users/")
        XCTAssertEqual(prefix("/static/.*"), "/static/")
        XCTAssertEqual(prefix("/health"), "/health")
        XCTAssertEqual(prefix("^/api/v1/"), "/api/v1/")
        XCTAssertEqual(prefix(""), "")
        XCTAssertEqual(prefix("/files/a b#c"), "/files/a b#c", "space and # are literals outside extended mode")
    }

    func testEscapes() {
        XCTAssertEqual(prefix("/a\\.b/c"), "/a.b/c")
        XCTAssertEqual(prefix("/a\\/b\\-c"), "/a/b-c")
        XCTAssertEqual(prefix("/\\d+"), "/")
        XCTAssertEqual(prefix("/x\\x41"), "/x")
        XCTAssertEqual(prefix("/a\\Kb"), "/a")
        XCTAssertEqual(prefix("/a\\.?"), "/a")
    }

    func testQuantifiersMakeTheLastLiteralOptional() {
        XCTAssertEqual(prefix("/ab?c"), "/a")
        XCTAssertEqual(prefix("/ab*"), "/a")
        XCTAssertEqual(prefix("/ab{2}"), "/a")
        XCTAssertEqual(prefix("/ab{,2}"), "/a")
        XCTAssertEqual(prefix("/ab+c"), "/ab")
        XCTAssertEqual(prefix("/ab+?c"), "/ab")
        XCTAssertEqual(prefix("/ab++c"), "/ab")
        XCTAssertEqual(prefix("/a??"), "/")
    }

    func testUTF8Literals() {
        XCTAssertEqual(prefix("/bücher/(\\d+)"), "/bücher/")
        XCTAssertEqual(prefix("/bü?"), "/b", "the quantifier applies to the whole character")
        XCTAssertEqual(prefix("/€+x"), "/€")
    }

    func testTopLevelAlternationEmptiesThePrefix() {
        XCTAssertEqual(prefix("/a|/b"), "")
        XCTAssertEqual(prefix("/a/(x)|/b"), "")
        XCTAssertEqual(prefix("/ab|"), "")
        XCTAssertEqual(prefix("/(a|b)"), "/")
        XCTAssertEqual(prefix("/a[|]b"), "/a")
        XCTAssertEqual(prefix("/a\\|b"), "/a|b")
        XCTAssertEqual(prefix("/a(?:x|y)"), "/a")
    }

    func testClassesThatHideAlternationAreFollowed() {
        XCTAssertEqual(prefix("/a[]|(]|/b"), "", "] first in a class is literal")
        XCTAssertEqual(prefix("/a[^]|(]|/b"), "")
        XCTAssertEqual(prefix("/a[\\]|(]|/b"), "")
        XCTAssertEqual(prefix("/a[^]x]y"), "/a")
        XCTAssertEqual(prefix("/a[[:alpha:]]"), "", "POSIX classes are not followed")
        XCTAssertEqual(prefix("/a[[:alpha:](]|/b"), "")
    }

    func testSyntaxThatCouldMisleadTheScannerEmptiesThePrefix() {
        XCTAssertEqual(prefix("/a\\E?"), "", "\\E is ignored, so ? applies to a")
        XCTAssertEqual(prefix("/a\\Q\\E?"), "")
        XCTAssertEqual(prefix("/x\\Qa.b\\E"), "")
        XCTAssertEqual(prefix("/a\\Q(\\E|/b"), "")
        XCTAssertEqual(prefix("/a(?#c)?"), "", "comments are skipped, so ? applies to a")
        XCTAssertEqual(prefix("/a(?x) ?|/b"), "")
        XCTAssertEqual(prefix("/a(?x:#(\n)|/b"), "")
        XCTAssertEqual(prefix("(*UTF)/a"), "")
        XCTAssertEqual(prefix("/a(*MARK:x|y)"), "")
        XCTAssertEqual(prefix("/a\\c(|/b"), "", "\\c( is a control character, not a group")
        XCTAssertEqual(prefix("/a(?C1)"), "")
        XCTAssertEqual(prefix("/a(?1)"), "")
    }

    func testGroupsAndOptionsAfterThePrefixAreFine() {
        XCTAssertEqual(prefix("(?i)/abc"), "")
        XCTAssertEqual(prefix("/a(?i)bc"), "/a")
        XCTAssertEqual(prefix("/a(?i:b)c"), "/a")
        XCTAssertEqual(prefix("/a(?-i)b"), "/a")
        XCTAssertEqual(prefix("/a(?=b)"), "/a")
        XCTAssertEqual(prefix("/a(?<!x)b"), "/a")
        XCTAssertEqual(prefix("/a(?P<n>b)"), "/a")
        XCTAssertEqual(prefix("/a(?'n'b)"), "/a")
        XCTAssertEqual(prefix("/a(?|(b)|(c))"), "/a")
        XCTAssertEqual(prefix("/a(?(1)b|c)"), "/a")
        XCTAssertEqual(prefix("/a(?>b|c)"), "/a")
        XCTAssertEqual(prefix("/a$"), "/a")
        XCTAssertEqual(prefix("/a.b"), "/a")
    }
}
