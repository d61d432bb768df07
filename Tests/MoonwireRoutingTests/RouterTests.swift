// Virtual hosts, method sets and precedence: what the Lua layer relies on to pick a handler,
// a 405 or a 404.
import MoonwireRouting
import XCTest

final class RouterTests: XCTestCase {
    private func handler<Handler>(_ result: RouteMatch<Handler>) -> Handler? {
        if case .matched(let handler, _) = result.outcome { return handler }
        return nil
    }

    private func params<Handler>(_ result: RouteMatch<Handler>) -> RouteParams? {
        if case .matched(_, let params) = result.outcome { return params }
        return nil
    }

    private func allowed<Handler>(_ result: RouteMatch<Handler>) -> [String]? {
        if case .methodNotAllowed(let allowed) = result.outcome { return allowed }
        return nil
    }

    func testInvalidPatternsThrowWithPCRE2MessageAndOffset() {
        let router = Router<String>()
        XCTAssertThrowsError(try router.addRoute(host: nil, methods: ["GET"], path: "/users/(\\d+", handler: "x")) {
            let error = $0 as? RegexError
            XCTAssertEqual(error?.kind, .invalidPattern)
            XCTAssertEqual(error?.message, "missing closing parenthesis")
            XCTAssertEqual(error?.offset, 11)
            XCTAssertEqual(error?.pattern, "/users/(\\d+")
        }
        XCTAssertThrowsError(try router.addHost(pattern: "*.example.com")) {
            XCTAssertEqual(($0 as? RegexError)?.message, "quantifier does not follow a repeatable item")
            XCTAssertEqual(($0 as? RegexError)?.offset, 0)
        }
        XCTAssertTrue(router.isEmpty, "a failed registration adds nothing")
    }

    func testWholePathMustMatch() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/a", handler: "a")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/a")), "a")
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/ab").outcome, .notFound)
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/x/a").outcome, .notFound)
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/a\n").outcome, .notFound)
    }

    func testPathCapturesNamedAndNumberedWithUnsetGroupsAbsent() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/users/(?<id>\\d+)/posts/(\\w+)(/x)?", handler: "posts")
        let found = router.match(host: "example.com", method: "GET", path: "/users/42/posts/hello")
        XCTAssertEqual(handler(found), "posts")
        XCTAssertEqual(params(found)?.numbered, [1: "42", 2: "hello"])
        XCTAssertEqual(params(found)?.named, ["id": "42"])
        let empty = try Router<String>().with { try $0.addRoute(host: nil, methods: [], path: "/q/(\\d*)", handler: "q") }
        XCTAssertEqual(params(empty.match(host: "", method: "GET", path: "/q/"))?.numbered, [1: ""], "empty is not unset")
    }

    func testHostCapturesAreNumberedAfterPathCapturesAndPathNamesWin() throws {
        let router = Router<String>()
        let host = try router.addHost(pattern: "(?<tenant>[a-z]+)\\.(?<id>[a-z]+)\\.example\\.com")
        try router.addRoute(host: host, methods: ["GET"], path: "/items/(?<id>\\d+)/(x)?", handler: "tenant")
        let found = router.match(host: "ACME.eu.example.com", method: "GET", path: "/items/7/")
        XCTAssertEqual(handler(found), "tenant")
        XCTAssertEqual(found.host, host)
        XCTAssertEqual(params(found)?.numbered, [1: "7", 3: "ACME", 4: "eu"], "path has 2 groups: host's start at 3")
        XCTAssertEqual(params(found)?.named, ["tenant": "ACME", "id": "7"])
    }

    func testHostsAreCaselessAndMatchTheWholeNameWithoutPort() throws {
        let router = Router<String>()
        let site = try router.addHost(pattern: "www\\.example\\.com")
        try router.addRoute(host: site, methods: [], path: "/", handler: "site")
        try router.addRoute(host: nil, methods: [], path: "/", handler: "default")
        for host in ["www.example.com", "WWW.Example.COM"] {
            XCTAssertEqual(handler(router.match(host: host, method: "GET", path: "/")), "site", host)
        }
        for host in ["example.com", "www.example.com.evil", "xwww.example.com", "", "[::1]:80"] {
            XCTAssertEqual(handler(router.match(host: host, method: "GET", path: "/")), "default", host)
        }
    }

    func testIPv6LiteralHosts() throws {
        let router = Router<String>()
        let local = try router.addHost(pattern: "\\[::1\\]")
        try router.addRoute(host: local, methods: [], path: "/", handler: "local")
        XCTAssertEqual(handler(router.match(host: "[::1]", method: "GET", path: "/")), "local")
        XCTAssertEqual(handler(router.match(host: "[::1]", method: "GET", path: "/")), "local")
        XCTAssertEqual(router.match(host: "[::2]", method: "GET", path: "/").outcome, .notFound)
    }

    func testHostPrecedenceAndNoFallThrough() throws {
        let router = Router<String>()
        let api = try router.addHost(pattern: "api\\..*")
        let test = try router.addHost(pattern: ".*\\.test")
        try router.addRoute(host: api, methods: [], path: "/x", handler: "api")
        try router.addRoute(host: test, methods: [], path: "/x", handler: "test")
        try router.addRoute(host: test, methods: [], path: "/only-test", handler: "only-test")
        try router.addRoute(host: nil, methods: [], path: "/x", handler: "default")
        try router.addRoute(host: nil, methods: [], path: "/only-default", handler: "only-default")
        XCTAssertEqual(handler(router.match(host: "api.site.test", method: "GET", path: "/x")), "api")
        XCTAssertEqual(router.match(host: "api.site.test", method: "GET", path: "/x").host, api)
        XCTAssertEqual(handler(router.match(host: "www.site.test", method: "GET", path: "/x")), "test")
        XCTAssertEqual(handler(router.match(host: "other.org", method: "GET", path: "/x")), "default")
        XCTAssertNil(router.match(host: "other.org", method: "GET", path: "/x").host)
        // A matched virtual host is a site of its own: no fall-through to later hosts or the default.
        let notFound = router.match(host: "api.site.test", method: "GET", path: "/only-test")
        XCTAssertEqual(notFound.host, api)
        XCTAssertEqual(notFound.outcome, .notFound)
        XCTAssertEqual(router.match(host: "api.site.test", method: "GET", path: "/only-default").outcome, .notFound)
        XCTAssertEqual(handler(router.match(host: "other.org", method: "GET", path: "/only-default")), "only-default")
    }

    func testMissingHostGoesToTheDefaultHost() throws {
        let router = Router<String>()
        let named = try router.addHost(pattern: "named\\.test")
        try router.addRoute(host: named, methods: [], path: "/", handler: "named")
        try router.addRoute(host: nil, methods: [], path: "/", handler: "default")
        let found = router.match(host: "", method: "GET", path: "/")
        XCTAssertNil(found.host)
        XCTAssertEqual(found.outcome, .matched("default", params: RouteParams()))
    }

    func testAHostThatMatchesEmptyHostsTakesRequestsWithoutHost() throws {
        let router = Router<String>()
        let anything = try router.addHost(pattern: ".*")
        try router.addRoute(host: anything, methods: [], path: "/", handler: "any")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/")), "any")
    }

    func testFirstRegisteredRouteWins() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/files/.*", handler: "wide")
        try router.addRoute(host: nil, methods: ["GET"], path: "/files/special", handler: "narrow")
        try router.addRoute(host: nil, methods: ["GET"], path: "/(.*)", handler: "catch-all")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/files/special")), "wide")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/filesx")), "catch-all")
    }

    func testMethodSets() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["get"], path: "/r", handler: "get")
        try router.addRoute(host: nil, methods: ["POST", "PUT"], path: "/r", handler: "write")
        try router.addRoute(host: nil, methods: ["*"], path: "/any", handler: "star")
        try router.addRoute(host: nil, methods: [], path: "/any2", handler: "empty")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/r")), "get", "registered methods are uppercased")
        XCTAssertEqual(handler(router.match(host: "", method: "PUT", path: "/r")), "write")
        XCTAssertEqual(handler(router.match(host: "", method: "POST", path: "/r")), "write")
        for method in ["GET", "DELETE", "PROPFIND", "OPTIONS"] {
            XCTAssertEqual(handler(router.match(host: "", method: method, path: "/any")), "star")
            XCTAssertEqual(handler(router.match(host: "", method: method, path: "/any2")), "empty")
        }
    }

    func testMethodNotAllowedListsTheSortedUnionWithHeadForGet() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/r", handler: "get")
        try router.addRoute(host: nil, methods: ["PUT", "POST"], path: "/r", handler: "write")
        try router.addRoute(host: nil, methods: ["DELETE"], path: "/(d|r)", handler: "delete")
        try router.addRoute(host: nil, methods: ["PATCH"], path: "/other", handler: "other")
        XCTAssertEqual(allowed(router.match(host: "", method: "PATCH", path: "/r")), ["DELETE", "GET", "HEAD", "POST", "PUT"])
        XCTAssertEqual(allowed(router.match(host: "", method: "GET", path: "/d")), ["DELETE"], "no HEAD without GET, no OPTIONS")
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/nothing").outcome, .notFound)
    }

    func testHeadFallsBackToGetOnlyWhenNoHeadRouteMatches() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/page", handler: "get-page")
        try router.addRoute(host: nil, methods: ["HEAD"], path: "/page", handler: "head-page")
        try router.addRoute(host: nil, methods: ["GET"], path: "/doc", handler: "get-doc")
        try router.addRoute(host: nil, methods: ["POST"], path: "/form", handler: "post-form")
        XCTAssertEqual(handler(router.match(host: "", method: "HEAD", path: "/page")), "head-page")
        XCTAssertEqual(handler(router.match(host: "", method: "HEAD", path: "/doc")), "get-doc")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/page")), "get-page")
        XCTAssertEqual(allowed(router.match(host: "", method: "HEAD", path: "/form")), ["POST"])
    }

    func testRoutesAddedAfterAMatchAreSeen() throws {
        let router = Router<String>()
        XCTAssertTrue(router.isEmpty)
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/late").outcome, .notFound)
        try router.addRoute(host: nil, methods: [], path: "/late", handler: "late")
        XCTAssertFalse(router.isEmpty)
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/late")), "late")
        let host = try router.addHost(pattern: "h")
        try router.addRoute(host: host, methods: [], path: "/h", handler: "h")
        XCTAssertEqual(handler(router.match(host: "h", method: "GET", path: "/h")), "h")
    }

    func testInt32HandlersAsTheLuaLayerStoresThem() throws {
        let router = Router<Int32>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/lua/(?<name>.+)", handler: 17)
        var expected = RouteParams()
        expected.numbered = [1: "é x"]
        expected.named = ["name": "é x"]
        XCTAssertEqual(router.match(host: "", method: "GET", path: "/lua/é x").outcome, .matched(17, params: expected))
    }

    func testUnsetHostGroupsAreAbsentAndHostNamesFillUnsetPathNames() throws {
        let router = Router<String>()
        let host = try router.addHost(pattern: "(?<sub>[a-z]+\\.)?(?<id>site)\\.test")
        try router.addRoute(host: host, methods: [], path: "/(?<id>\\d+)?x", handler: "x")
        let found = router.match(host: "site.test", method: "GET", path: "/x")
        XCTAssertEqual(params(found)?.numbered, [3: "site"], "path group 1 and host group 1 are unset")
        XCTAssertEqual(params(found)?.named, ["id": "site"], "the path's id is unset, so the host's shows")
    }

    func testAnyMethodRouteAnswersHeadBeforeAGetFallback() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/p", handler: "get")
        try router.addRoute(host: nil, methods: [], path: "/p", handler: "any")
        XCTAssertEqual(handler(router.match(host: "", method: "HEAD", path: "/p")), "any")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/p")), "get")
    }

    func testLimitsApplyToRouteMatching() throws {
        let router = Router<String>(limits: .init(matchLimit: 10))
        try router.addRoute(host: nil, methods: [], path: "/(a+)+$", handler: "evil")
        let subject = "/" + String(repeating: "a", count: 12) + "b"
        XCTAssertEqual(router.match(host: "", method: "GET", path: subject).outcome, .notFound)
    }
}

extension Router {
    /// The router after `body` configured it, for one-line test setups.
    func with(_ body: (Router) throws -> Void) rethrows -> Router {
        try body(self)
        return self
    }
}
