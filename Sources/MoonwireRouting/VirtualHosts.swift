// The handler-independent half of the router: host patterns, one route table per host plus
// the default host's, and the matcher they share. Kept apart from the generic `Router` so the
// whole lookup is compiled once, specialized, instead of running generic code per handler type.

/// Virtual hosts and their route tables, with routes identified by handler slot.
@usableFromInline
final class VirtualHosts {
    /// What a lookup found, with the handler as a slot in the router's handler list.
    @usableFromInline
    struct Resolution {
        @usableFromInline
        enum Outcome {
            case matched(handlerSlot: Int, params: RouteParams)
            case methodNotAllowed(allowed: [String])
            case notFound
        }

        /// Registration position of the host that took the request; nil for the default host.
        @usableFromInline var host: Int?
        @usableFromInline var outcome: Outcome
    }

    private struct VirtualHost {
        let regex: Regex
        let routes = RouteTable()
    }

    private var hosts: [VirtualHost] = []
    private let defaultRoutes = RouteTable()
    private var isFrozen = false
    private let matcher: RegexMatcher

    init(limits: RegexMatcher.Limits) {
        matcher = RegexMatcher(limits: limits)
    }

    var hostCount: Int { hosts.count }

    /// Adds a host whose caseless, whole-name pattern is `pattern`.
    func addHost(pattern: String) throws(RegexError) {
        hosts.append(VirtualHost(regex: try Regex(pattern, options: [.wholeSubject, .caseless, .utf])))
    }

    /// Adds a route to host number `host` (nil: the default host).
    func addRoute(host: Int?, methods: [String], path: String, handlerSlot: Int) throws(RegexError) {
        let regex = try Regex(path, options: [.wholeSubject, .utf])
        let methodSet = methods.isEmpty || methods.contains("*") ? nil : Array(Set(methods.map { $0.uppercased() }))
        let route = Route(methods: methodSet, regex: regex, handlerSlot: handlerSlot, literalPrefix: LiteralPrefix.of(path))
        if let host {
            precondition(hosts.indices.contains(host), "HostID from another router")
            hosts[host].routes.append(route)
        } else {
            defaultRoutes.append(route)
        }
        isFrozen = false
    }

    /// Picks the host for the host name, then the route for `method` and `path`.
    @usableFromInline
    func resolve(host: () -> String, method: String, path: String) -> Resolution {
        if !isFrozen { freeze() }
        // Without virtual hosts the Host field is not even looked at.
        guard !hosts.isEmpty else {
            return resolve(method: method, path: path, host: nil, name: UnsafeRawBufferPointer(start: nil, count: 0), hostGroups: [])
        }
        var host = host()
        return host.withUTF8 { name in
            let name = UnsafeRawBufferPointer(name)
            let chosen = hosts.firstIndex { (try? matcher.run($0.regex, on: name, from: 0)) ?? false }
            // The path match will overwrite the matcher's captures: keep the host's first.
            var hostGroups: [Range<Int>?] = []
            if let chosen, hosts[chosen].regex.groupCount > 0 {
                hostGroups = (0...hosts[chosen].regex.groupCount).map { matcher.range(ofGroup: $0) }
            }
            return resolve(method: method, path: path, host: chosen, name: name, hostGroups: hostGroups)
        }
    }

    /// The route for `method` and `path` among the routes of `host` (nil: the default host),
    /// whose name and captures were `name` and `hostGroups`.
    private func resolve(
        method: String, path: String, host chosen: Int?, name: UnsafeRawBufferPointer, hostGroups: [Range<Int>?]
    ) -> Resolution {
        var path = path
        return path.withUTF8 { pathBytes in
            let pathBytes = UnsafeRawBufferPointer(pathBytes)
            let table = chosen.map { hosts[$0].routes } ?? defaultRoutes
            switch table.lookup(method: method, path: pathBytes, using: matcher) {
            case .matched(let position):
                let route = table.routes[position]
                var params = RouteParams()
                params.add(groups: matcher.range(ofGroup:), of: route.regex, in: pathBytes, numberedFrom: 1)
                if let chosen {
                    params.add(
                        groups: { hostGroups[$0] }, of: hosts[chosen].regex, in: name,
                        numberedFrom: route.regex.groupCount + 1)
                }
                return Resolution(host: chosen, outcome: .matched(handlerSlot: route.handlerSlot, params: params))
            case .methodNotAllowed(let allowed):
                return Resolution(host: chosen, outcome: .methodNotAllowed(allowed: allowed))
            case .notFound:
                return Resolution(host: chosen, outcome: .notFound)
            }
        }
    }

    /// Builds the prefix index of every table that changed since the last lookup.
    private func freeze() {
        defaultRoutes.freeze()
        for host in hosts { host.routes.freeze() }
        isFrozen = true
    }
}
