// What the router answers for a request: which virtual host took it and what that host's
// route table found, in a form the Lua layer maps to a handler call, a 405 or a 404.

/// Identifies a virtual host registered with ``Router/addHost(pattern:)``, so routes can be
/// added to it and a lookup can say which host answered (for its static root and options).
public struct HostID: Hashable, Sendable {
    /// Position in registration order.
    @usableFromInline let index: Int

    @usableFromInline
    init(index: Int) {
        self.index = index
    }
}

/// The outcome of a route lookup within the chosen host.
public enum RouteLookup<Handler> {
    /// A route matched: its handler and the captures of the host and path patterns.
    case matched(Handler, params: RouteParams)
    /// Routes of this host matched the path, none for this method: answer 405 and list these
    /// (sorted, HEAD included when GET is) in `Allow`.
    case methodNotAllowed(allowed: [String])
    /// No route of the chosen host matched the path: try static files or the catch-all events.
    case notFound
}

extension RouteLookup: Sendable where Handler: Sendable {}
extension RouteLookup: Equatable where Handler: Equatable {}

/// The router's answer: the chosen virtual host and what its routes gave.
public struct RouteMatch<Handler> {
    /// The registered virtual host whose pattern matched the Host value; nil when none did
    /// and the default host answered.
    public var host: HostID?
    /// What the route table of that host found.
    public var outcome: RouteLookup<Handler>

    @usableFromInline
    init(host: HostID?, outcome: RouteLookup<Handler>) {
        self.host = host
        self.outcome = outcome
    }
}

extension RouteMatch: Sendable where Handler: Sendable {}
extension RouteMatch: Equatable where Handler: Equatable {}
