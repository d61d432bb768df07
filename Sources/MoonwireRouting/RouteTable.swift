// The routes of one virtual host, in registration order, and the lookup rules: first
// registered match wins, HEAD falls back to GET, and a path that only matches routes of
// other methods is a 405 with the union of their methods.

/// One host's routes plus the prefix index that narrows a lookup to the routes that can match.
/// A class so that a lookup borrows the table instead of copying (and retaining) its arrays.
final class RouteTable {
    /// What a lookup in one table found.
    enum Outcome {
        /// The route at this position matched; the matcher still holds its captures.
        case matched(route: Int)
        /// Routes matched the path but none accepts the method.
        case methodNotAllowed(allowed: [String])
        /// No route matched the path.
        case notFound
    }

    /// The routes in registration order.
    private(set) var routes: [Route] = []
    /// Built by ``freeze()``; stale while `needsIndex` is set.
    private var index = PrefixIndex(prefixes: [])
    private var needsIndex = false

    /// Adds a route after the existing ones; the index is rebuilt by the next ``freeze()``.
    func append(_ route: Route) {
        routes.append(route)
        needsIndex = true
    }

    /// Builds the prefix index if routes were added since it was last built.
    func freeze() {
        guard needsIndex else { return }
        index = PrefixIndex(prefixes: routes.map(\.literalPrefix))
        needsIndex = false
    }

    /// Finds the route for `method` and `path`. A route whose match hits a resource limit
    /// counts as not matching: the request cannot buy more CPU by crafting a path.
    func lookup(method: String, path: UnsafeRawBufferPointer, using matcher: RegexMatcher) -> Outcome {
        precondition(!needsIndex, "RouteTable.freeze() must run before lookup")
        func matches(_ route: Route) -> Bool {
            (try? matcher.run(route.regex, on: path, from: 0)) ?? false
        }
        var found: Int?
        var anyCandidate = false
        index.forEachCandidate(in: path) { position in
            anyCandidate = true
            let route = routes[position]
            guard route.accepts(method), matches(route) else { return false }
            found = position
            return true
        }
        if found == nil, method == "HEAD" {
            // Only routes that name GET: routes for any method were tried above.
            index.forEachCandidate(in: path) { position in
                let route = routes[position]
                guard route.methods?.contains("GET") == true, matches(route) else { return false }
                found = position
                return true
            }
        }
        if let found { return .matched(route: found) }
        // No route's literal prefix fits the path (as for every request a handler or a static
        // file answers): no other method can match either.
        guard anyCandidate else { return .notFound }
        // The slow path, only for requests that get no handler: which methods would have worked?
        var allowed: Set<String> = []
        index.forEachCandidate(in: path) { position in
            let route = routes[position]
            if let methods = route.methods, !methods.allSatisfy(allowed.contains), matches(route) {
                allowed.formUnion(methods)
            }
            return false
        }
        guard !allowed.isEmpty else { return .notFound }
        if allowed.contains("GET") { allowed.insert("HEAD") }
        return .methodNotAllowed(allowed: allowed.sorted())
    }
}
