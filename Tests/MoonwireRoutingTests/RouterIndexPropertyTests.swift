// The prefix index must never change an answer: on seeded random tables of patterns built
// from tricky pieces (alternation, quoting, comments, classes, UTF-8, optional literals), the
// router answers exactly as a naive scan that runs every route's regex in order.
import MoonwireRouting
import XCTest

final class RouterIndexPropertyTests: XCTestCase {
    private static let pathPieces = [
        "/", "/", "a", "b", "ab", "(\\d+)", "[a-c]", "x?", "y*", ".", "\\.", "(a|b)", "z+", "(?<n>\\w+)", "|",
        "(?i)A", "\\E", "(?#c)", "?", "+", "[]|(]", "[^]a]", "\\Q|(\\E", "é", "\\c(", ")", "(", "(?:", "{2}", "\\d",
        "a??", "(?x) ", "#", " ", "(*MARK:m)", "\\K", "^", "$", "(?-i)b", "\\/", "[[:digit:]]", "(?<p>a)?",
    ]
    private static let subjectPieces = [
        "/", "/", "a", "b", "ab", "1", "22", ".", "x", "y", "z", "A", "é", "|", "(", "]", " ", "#", "c", "\u{08}",
    ]
    private static let hostPieces = ["a", "b", "\\.", ".*", "(x)", "(?<h>[a-z]+)", "example", "com", "|", "(?<n>b)"]
    private static let hosts = ["", "a", "b.com", "example.com", "x", "B", "ab.example.com", "[::1]"]
    private static let methodSets: [[String]] = [[], ["GET"], ["POST"], ["GET", "POST"], ["HEAD"], ["PUT"], ["*"]]

    func testIndexedRouterAgreesWithNaiveScan() throws {
        var random = SplitMix(seed: 0x5EED_2026)
        var compared = 0
        var matched = 0
        for _ in 0..<120 {
            let router = Router<Int>()
            let naive = NaiveRouter()
            var hostIDs: [HostID] = []
            for _ in 0..<random.next(below: 4) {
                let pattern = random.concatenation(of: Self.hostPieces, count: 1 + random.next(below: 3))
                guard let id = try? router.addHost(pattern: pattern) else { continue }
                hostIDs.append(id)
                naive.hosts.append((try Regex(pattern, options: [.wholeSubject, .caseless, .utf]), []))
            }
            var subjects = Self.subjectPieces
            for handler in 0..<30 {
                let pattern = random.concatenation(of: Self.pathPieces, count: 1 + random.next(below: 5))
                let methods = Self.methodSets[random.next(below: Self.methodSets.count)]
                let host = random.next(below: hostIDs.count + 1)
                let hostID = host < hostIDs.count ? hostIDs[host] : nil
                guard (try? router.addRoute(host: hostID, methods: methods, path: pattern, handler: handler)) != nil
                else { continue }
                try naive.addRoute(host: hostID == nil ? nil : host, methods: methods, path: pattern, handler: handler)
                subjects.append(pattern)
                subjects.append(pattern.replacingOccurrences(of: "\\", with: ""))
            }
            for _ in 0..<40 { subjects.append(random.concatenation(of: Self.subjectPieces, count: random.next(below: 6))) }
            for subject in subjects {
                for method in ["GET", "HEAD", "POST", "DELETE"] {
                    let host = Self.hosts[random.next(below: Self.hosts.count)]
                    let expected = naive.match(host: host, method: method, path: subject)
                    let found = router.match(host: host, method: method, path: subject)
                    let context = "\(method) \(host) \(subject.debugDescription)"
                    XCTAssertEqual(found.outcome, expected.outcome, context)
                    XCTAssertEqual(found.host, expected.host.map { hostIDs[$0] }, context)
                    compared += 1
                    if case .matched = found.outcome { matched += 1 }
                }
            }
        }
        XCTAssertGreaterThan(matched, compared / 20, "the generator must produce enough matches to be meaningful")
    }
}

/// The specification of routing written as plainly as possible: every route's regex, in
/// registration order, no index.
private final class NaiveRouter {
    typealias NaiveRoute = (methods: [String]?, regex: Regex, handler: Int)
    var hosts: [(regex: Regex, routes: [NaiveRoute])] = []
    var defaultRoutes: [NaiveRoute] = []
    let matcher = RegexMatcher()

    func addRoute(host: Int?, methods: [String], path: String, handler: Int) throws {
        let any = methods.isEmpty || methods.contains("*")
        let route = (methods: any ? nil : methods, regex: try Regex(path, options: [.wholeSubject, .utf]), handler: handler)
        if let host { hosts[host].routes.append(route) } else { defaultRoutes.append(route) }
    }

    func match(host: String, method: String, path: String) -> (host: Int?, outcome: RouteLookup<Int>) {
        let chosen = hosts.firstIndex { (try? $0.regex.match(host, using: matcher)) != nil }
        let routes = chosen.map { hosts[$0].routes } ?? defaultRoutes
        func matching(_ route: NaiveRoute) -> RegexMatch? { (try? route.regex.match(path, using: matcher)) ?? nil }
        func first(where accepts: (NaiveRoute) -> Bool) -> (NaiveRoute, RegexMatch)? {
            for route in routes where accepts(route) {
                if let found = matching(route) { return (route, found) }
            }
            return nil
        }
        let winner = first { $0.methods?.contains(method) ?? true }
            ?? (method == "HEAD" ? first { $0.methods?.contains("GET") ?? false } : nil)
        guard let (route, pathMatch) = winner else {
            var allowed = Set(routes.filter { matching($0) != nil }.flatMap { $0.methods ?? [] })
            if allowed.contains("GET") { allowed.insert("HEAD") }
            return (chosen, allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed.sorted()))
        }
        var params = RouteParams()
        Self.collect(pathMatch, regex: route.regex, subject: path, from: 1, into: &params)
        if let chosen, let hostMatch = try? hosts[chosen].regex.match(host, using: matcher) {
            Self.collect(hostMatch, regex: hosts[chosen].regex, subject: host, from: route.regex.groupCount + 1, into: &params)
        }
        return (chosen, .matched(route.handler, params: params))
    }

    private static func collect(
        _ match: RegexMatch, regex: Regex, subject: String, from first: Int, into params: inout RouteParams
    ) {
        for group in 1..<match.ranges.count {
            if let range = match[group] { params.numbered[first + group - 1] = text(range, in: subject) }
        }
        for entry in regex.names where params.named[entry.name] == nil {
            if let range = match[entry.group] { params.named[entry.name] = text(range, in: subject) }
        }
    }
}

/// A small deterministic generator (SplitMix64), so randomized tests repeat exactly.
struct SplitMix {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A number in `0..<bound` (0 when `bound` is 0).
    mutating func next(below bound: Int) -> Int {
        bound == 0 ? 0 : Int(next() % UInt64(bound))
    }

    /// `count` pieces picked at random and joined.
    mutating func concatenation(of pieces: [String], count: Int) -> String {
        (0..<count).map { _ in pieces[next(below: pieces.count)] }.joined()
    }
}
