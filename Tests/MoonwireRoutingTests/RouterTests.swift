import XCTest

@testable import MoonwireRouting

final class RouterTests: XCTestCase {
    private func handler(_ result: RouteMatch<String>) -> String? {
        if case .matched(let handler, _) = result.outcome { return handler }
        return nil
    }

    private func params(_ result: RouteMatch<String>) -> RouteParams? {
        if case .matched(_, let params) = result.outcome { return params }
        return nil
    }

    func testCompileErrorsCarryMessageAndOffset() {
        XCTAssertThrowsError(try Regex("/users/(\\d+")) { error in
            let error = error as! RegexError
            XCTAssertEqual(error.offset, 11)
            XCTAssertTrue(error.message.contains("missing closing parenthesis"), error.message)
            XCTAssertTrue(error.description.contains("/users/(\\d+"))
        }
    }

    func testPathCapturesNamedAndNumbered() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/users/(?<id>\\d+)/posts/(\\w+)(/x)?", handler: "posts")
        let found = router.match(host: "example.com", method: "GET", path: "/users/42/posts/hello")
        XCTAssertEqual(handler(found), "posts")
        XCTAssertEqual(params(found)?.numbered, [1: "42", 2: "hello"])
        XCTAssertEqual(params(found)?.named, ["id": "42"])
    }

    func testWholePathMustMatch() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/a", handler: "a")
        XCTAssertNil(handler(router.match(host: "", method: "GET", path: "/ab")))
        XCTAssertNil(handler(router.match(host: "", method: "GET", path: "/x/a")))
    }

    func testHostCapturesFollowPathCaptures() throws {
        let router = Router<String>()
        let host = try router.addHost(pattern: "(?<tenant>[a-z]+)\\.example\\.com")
        try router.addRoute(host: host, methods: ["GET"], path: "/items/(\\d+)", handler: "tenant")
        let found = router.match(host: "ACME.example.com", method: "GET", path: "/items/7")
        XCTAssertEqual(handler(found), "tenant")
        XCTAssertEqual(params(found)?.numbered, [1: "7", 2: "ACME"])
        XCTAssertEqual(params(found)?.named, ["tenant": "ACME"])
    }

    func testHostPrecedenceAndDefaultHost() throws {
        let router = Router<String>()
        let api = try router.addHost(pattern: "api\\..*")
        let any = try router.addHost(pattern: ".*\\.test")
        try router.addRoute(host: api, methods: [], path: "/x", handler: "api")
        try router.addRoute(host: any, methods: [], path: "/x", handler: "test")
        try router.addRoute(host: nil, methods: [], path: "/x", handler: "default")
        try router.addRoute(host: nil, methods: [], path: "/only-default", handler: "only")
        XCTAssertEqual(handler(router.match(host: "api.site.test", method: "GET", path: "/x")), "api")
        XCTAssertEqual(router.match(host: "api.site.test", method: "GET", path: "/x").host, api)
        XCTAssertNil(router.match(host: "other.org", method: "GET", path: "/x").host)
        XCTAssertEqual(handler(router.match(host: "www.site.test", method: "GET", path: "/x")), "test")
        XCTAssertEqual(handler(router.match(host: "other.org", method: "GET", path: "/x")), "default")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/x")), "default")
        XCTAssertEqual(handler(router.match(host: "[::1]", method: "GET", path: "/x")), "default")
        // A matched virtual host is a site of its own: no fall-through to the default routes.
        guard case .notFound = router.match(host: "api.site.test", method: "GET", path: "/only-default").outcome else {
            return XCTFail("expected notFound")
        }
    }

    func testFirstRegisteredRouteWins() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/files/.*", handler: "wide")
        try router.addRoute(host: nil, methods: ["GET"], path: "/files/special", handler: "narrow")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/files/special")), "wide")
    }

    func testMethodSetsHeadFallbackAnd405() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: ["GET"], path: "/r", handler: "get")
        try router.addRoute(host: nil, methods: ["POST", "PUT"], path: "/r", handler: "write")
        try router.addRoute(host: nil, methods: ["DELETE"], path: "/d", handler: "delete")
        XCTAssertEqual(handler(router.match(host: "", method: "GET", path: "/r")), "get")
        XCTAssertEqual(handler(router.match(host: "", method: "HEAD", path: "/r")), "get")
        XCTAssertEqual(handler(router.match(host: "", method: "PUT", path: "/r")), "write")
        guard case .methodNotAllowed(let allowed) = router.match(host: "", method: "PATCH", path: "/r").outcome else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(allowed, ["GET", "HEAD", "POST", "PUT"])
        guard case .methodNotAllowed(let deleteOnly) = router.match(host: "", method: "GET", path: "/d").outcome else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(deleteOnly, ["DELETE"])
    }

    func testCatastrophicBacktrackingEndsQuickly() throws {
        let router = Router<String>()
        try router.addRoute(host: nil, methods: [], path: "/((a+)+)+b", handler: "evil")
        let started = Date()
        let result = router.match(host: "", method: "GET", path: "/" + String(repeating: "a", count: 5000) + "c")
        XCTAssertNil(handler(result))
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }

    func testLiteralPrefixes() {
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/users/(\\d+)"), as: UTF8.self), "/users/")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("^/a\\.b/c"), as: UTF8.self), "/a.b/c")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/ab?c"), as: UTF8.self), "/a")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/ab*"), as: UTF8.self), "/a")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/ab+"), as: UTF8.self), "/ab")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/ab{2}"), as: UTF8.self), "/a")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/a|/b"), as: UTF8.self), "")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/(a|b)"), as: UTF8.self), "/")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("(?i)/abc"), as: UTF8.self), "")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/\\d+"), as: UTF8.self), "/")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/a[|]b"), as: UTF8.self), "/a")
        XCTAssertEqual(String(decoding: LiteralPrefix.of("/x\\Qa.b\\E"), as: UTF8.self), "/x")
    }

    /// The index must give exactly the answer of a linear scan of every route.
    func testIndexAgreesWithLinearScan() throws {
        var generator = SplitMix(seed: 42)
        let pieces = ["/", "a", "b", "ab", "(\\d+)", "[a-c]", "x?", "y*", ".", "\\.", "(a|b)", "z+", "(?<n>\\w+)", "|", "(?i)A"]
        let subjects = ["/", "/a", "/ab", "/abc", "/a1", "/b/2", "/ax", "/ayyy", "/a.b", "/zz", "/A", "/a/b/c", "/ba", "/x"]
        for _ in 0..<60 {
            let router = Router<Int>()
            var regexes: [Regex] = []
            for _ in 0..<25 {
                var pattern = "/"
                for _ in 0..<Int(generator.next() % 4) { pattern += pieces[Int(generator.next() % UInt64(pieces.count))] }
                guard let regex = try? Regex(pattern, options: [.wholeSubject, .utf]) else { continue }
                try router.addRoute(host: nil, methods: [], path: pattern, handler: regexes.count)
                regexes.append(regex)
            }
            for subject in subjects {
                let expected = regexes.firstIndex { (try? $0.match(subject)) != nil }
                var found: Int?
                if case .matched(let position, _) = router.match(host: "", method: "GET", path: subject).outcome { found = position }
                XCTAssertEqual(found, expected, "\(subject) against \(regexes.map(\.pattern))")
            }
        }
    }

    func testThousandRoutes() throws {
        let router = Router<Int>()
        for n in 1...1000 { try router.addRoute(host: nil, methods: ["GET"], path: "/r\(n)/(\\d+)", handler: n) }
        for n in [1, 10, 100, 999, 1000] {
            guard case .matched(let found, let params) = router.match(host: "", method: "GET", path: "/r\(n)/55").outcome else {
                return XCTFail("no match for \(n)")
            }
            XCTAssertEqual(found, n)
            XCTAssertEqual(params.numbered[1], "55")
        }
    }
}

/// A small deterministic generator, so the randomized test is the same on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
