// Virtual hosts and their route tables: PCRE2 host patterns on the Host header, then method
// sets and PCRE2 path patterns on the decoded path. A lookup costs one regex match per host
// tried plus, thanks to the literal-prefix index, about one per route that can match the
// path, however many routes there are.

/// The virtual hosts and routes of one script generation. Build it while scripts load, then
/// match. Not thread-safe: it owns a ``RegexMatcher``, so each event loop (each Lua VM) keeps
/// its own router, as it keeps its own handlers.
///
/// Routes are indexed lazily: the first ``match(host:method:path:)`` after routes were added
/// builds the prefix index of every host that changed, so registering many routes costs no
/// rebuild per route, and adding routes later (a script registering at run time) still works.
public final class Router<Handler> {
    // Internal but inlinable-visible, so `match` specializes for the caller's handler type
    // instead of looking up generic metadata on every request.
    @usableFromInline let virtualHosts: VirtualHosts
    @usableFromInline var handlers: [Handler] = []

    /// An empty router: no virtual hosts, no routes. `limits` bound every host and path match
    /// (regex DoS defence); a match that hits one counts as no match.
    public init(limits: RegexMatcher.Limits = RegexMatcher.Limits()) {
        virtualHosts = VirtualHosts(limits: limits)
    }

    /// Whether no route was registered, so callers can skip routing altogether.
    public var isEmpty: Bool { handlers.isEmpty }

    /// Registers a virtual host. `pattern` is PCRE2, matched case-insensitively against the
    /// whole host name (the Host value without its port). Hosts are tried in registration
    /// order; the default host, which takes any Host, is tried after all of them.
    public func addHost(pattern: String) throws(RegexError) -> HostID {
        try virtualHosts.addHost(pattern: pattern)
        return HostID(index: virtualHosts.hostCount - 1)
    }

    /// Adds a route to `host` (nil: the default host; otherwise a host this router returned).
    /// `methods` lists the methods it answers (any case; stored uppercase); empty or
    /// containing "*" means every method. `path` is PCRE2, matched against the whole decoded
    /// path. Within a host the first registered matching route wins.
    public func addRoute(host: HostID?, methods: [String], path: String, handler: Handler) throws(RegexError) {
        try virtualHosts.addRoute(host: host?.index, methods: methods, path: path, handlerSlot: handlers.count)
        handlers.append(handler)
    }

    /// The bytes every path `pattern` matches starts with (`/api/` for `/api/(.*)`), possibly
    /// empty: what a proxy route replaces with its upstream's path.
    public static func literalPrefix(of pattern: String) -> String {
        String(decoding: LiteralPrefix.of(pattern), as: UTF8.self)
    }

    /// Finds the route for a request. `host` is the host name (the Host header without its
    /// port, as the server's request model gives it; empty when the request had none), asked
    /// for only when virtual hosts exist; `path` is the decoded path without query.
    ///
    /// The first virtual host whose pattern matches takes the request, and only its routes
    /// are searched: when none of them matches, the answer is `notFound` (or 405), not a
    /// route of a later host. A virtual host is a site of its own, as an nginx `server` block
    /// is; falling through would let a catch-all route of another site answer for this one.
    /// The default host's routes answer only requests whose Host matched no registered host.
    @inlinable
    public func match(host: @autoclosure () -> String, method: String, path: String) -> RouteMatch<Handler> {
        let resolution = virtualHosts.resolve(host: host, method: method, path: path)
        let outcome: RouteLookup<Handler> =
            switch resolution.outcome {
            case .matched(let slot, let params): .matched(handlers[slot], params: params)
            case .methodNotAllowed(let allowed): .methodNotAllowed(allowed: allowed)
            case .notFound: .notFound
            }
        return RouteMatch(host: resolution.host.map { HostID(index: $0) }, outcome: outcome)
    }
}
