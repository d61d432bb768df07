// Virtual hosts and their route tables: host patterns on the Host header, method sets and
// path patterns on the path, both PCRE2. Lookup cost does not grow with one regex match per
// route: a literal-prefix index picks the few routes that can match.

/// What a lookup found, and on which virtual host.
public struct RouteMatch<Handler> {
    /// The virtual host whose pattern matched the Host value; nil for the default host.
    public var host: HostID?
    /// The route outcome within that host.
    public var outcome: RouteLookup<Handler>
}

/// Identifies a registered virtual host.
public struct HostID: Hashable, Sendable {
    fileprivate let index: Int
}

/// What a route lookup found.
public enum RouteLookup<Handler> {
    /// A route matched: its handler and the captures of the host and path patterns.
    case matched(Handler, RouteParams)
    /// Routes matched the path, none for this method: answer 405 with these in `Allow`.
    case methodNotAllowed(allowed: [String])
    /// No route of the chosen host matched the path.
    case notFound
}

/// Captures of a matched route. Numbered: the path's groups are 1...n and the host's follow
/// them; named: both, the path's winning a clash.
public struct RouteParams: Sendable, Equatable {
    /// Numbered captures by number (groups that took no part are absent).
    public var numbered: [Int: String] = [:]
    /// Named captures by name.
    public var named: [String: String] = [:]

    /// No captures.
    public init() {}
}

/// A frozen set of virtual hosts and routes; build it while scripts load, then only match.
public final class Router<Handler> {
    private struct Route {
        var methods: Set<String>?
        var regex: Regex
        var handler: Handler
    }

    private struct Table {
        var routes: [Route] = []
        var index = PrefixIndex()
    }

    private var hosts: [(regex: Regex, table: Table)] = []
    private var fallback = Table()

    /// An empty router: no hosts, no routes.
    public init() {}

    /// Whether no route was registered (a router without routes costs nothing to skip).
    public private(set) var isEmpty = true

    /// Registers a virtual host; hosts are tried in registration order, the default last.
    /// The pattern must match the whole Host value (without port), case-insensitively.
    public func addHost(pattern: String) throws(RegexError) -> HostID {
        hosts.append((try Regex(pattern, options: [.wholeSubject, .caseless, .utf]), Table()))
        return HostID(index: hosts.count - 1)
    }

    /// Adds a route to a host (nil: the default host). `methods` empty or containing "*"
    /// accepts any method. The pattern must match the whole decoded path.
    public func addRoute(host: HostID?, methods: [String], path: String, handler: Handler) throws(RegexError) {
        let regex = try Regex(path, options: [.wholeSubject, .utf])
        let methodSet = methods.isEmpty || methods.contains("*") ? nil : Set(methods.map { $0.uppercased() })
        let route = Route(methods: methodSet, regex: regex, handler: handler)
        if let host {
            append(route, pattern: path, to: &hosts[host.index].table)
        } else {
            append(route, pattern: path, to: &fallback)
        }
    }

    private func append(_ route: Route, pattern: String, to table: inout Table) {
        isEmpty = false
        Self.append(route, pattern: pattern, to: &table)
    }

    private static func append(_ route: Route, pattern: String, to table: inout Table) {
        table.routes.append(route)
        table.index.insert(LiteralPrefix.of(pattern), route: table.routes.count - 1)
    }

    /// Finds the route for a request. `host` is the Host value without its port.
    /// A host that matched keeps the request even when none of its routes does: like an
    /// nginx server block, a virtual host is a site of its own, not a filter.
    public func match(host: String, method: String, path: String) -> RouteMatch<Handler> {
        var hostParams: [Range<Int>?] = []
        let hostBytes = Array(host.utf8)
        var table = fallback
        var hostRegex: Regex?
        var hostID: HostID?
        for (index, candidate) in hosts.enumerated() {
            let found = hostBytes.withUnsafeBytes { try? candidate.regex.match($0) }
            if let found {
                table = candidate.table
                hostParams = found.ranges
                hostRegex = candidate.regex
                hostID = HostID(index: index)
                break
            }
        }
        let pathBytes = Array(path.utf8)
        let outcome = pathBytes.withUnsafeBytes { subject in
            Self.lookup(in: table, method: method, path: subject) { pathMatch, regex in
                var params = RouteParams()
                Self.collect(pathMatch.ranges, regex: regex, subject: subject, offset: 0, into: &params)
                if let hostRegex {
                    hostBytes.withUnsafeBytes { hostSubject in
                        Self.collect(hostParams, regex: hostRegex, subject: hostSubject, offset: regex.groupCount, into: &params)
                    }
                }
                return params
            }
        }
        return RouteMatch(host: hostID, outcome: outcome)
    }

    private static func lookup(
        in table: Table, method: String, path: UnsafeRawBufferPointer, params: (RegexMatch, Regex) -> RouteParams
    ) -> RouteLookup<Handler> {
        var allowed: Set<String> = []
        var pathMatched = false
        for position in table.index.candidates(for: path) {
            let route = table.routes[position]
            guard let found = try? route.regex.match(path) else { continue }
            pathMatched = true
            guard let methods = route.methods else { return .matched(route.handler, params(found, route.regex)) }
            if methods.contains(method) || (method == "HEAD" && methods.contains("GET")) {
                return .matched(route.handler, params(found, route.regex))
            }
            allowed.formUnion(methods)
        }
        guard pathMatched else { return .notFound }
        if allowed.contains("GET") { allowed.insert("HEAD") }
        return .methodNotAllowed(allowed: allowed.sorted())
    }

    private static func collect(
        _ ranges: [Range<Int>?], regex: Regex, subject: UnsafeRawBufferPointer, offset: Int, into params: inout RouteParams
    ) {
        func text(_ range: Range<Int>) -> String { String(decoding: subject[range], as: UTF8.self) }
        for group in 1..<max(1, ranges.count) {
            if let range = ranges[group] { params.numbered[offset + group] = text(range) }
        }
        for (name, group) in regex.names where group < ranges.count {
            if let range = ranges[group], params.named[name] == nil || offset == 0 { params.named[name] = text(range) }
        }
    }
}
