// The servers a proxy route forwards to, taken in turn (round robin), with passive health
// checks as nginx's `max_fails=1 fail_timeout=`: a server that refused or did not answer a
// connect is left out for `failTimeout`, then tried again by the next request that comes to
// it. When every server is out, the one whose time ends first is tried anyway: a request is
// never refused only because all servers failed once.
import NIOCore

/// A list of upstream servers and what the requests of one event loop saw of them. Used on
/// that loop only: every loop keeps its own turn and its own view of failures, as each nginx
/// worker does without a shared zone.
public final class UpstreamGroup {
    public let servers: [OutboundURL]
    public let failTimeout: TimeAmount
    private var next = 0
    private var downUntil: [NIODeadline?]

    public init(servers: [OutboundURL], failTimeout: TimeAmount = .seconds(10)) {
        precondition(!servers.isEmpty, "an upstream group needs a server")
        self.servers = servers
        self.failTimeout = failTimeout
        downUntil = Array(repeating: nil, count: servers.count)
    }

    /// The index of the server the next request goes to, skipping those left out (and
    /// `excluding`, the ones this request already tried).
    public func pick(now: NIODeadline = .now(), excluding: Set<Int> = []) -> Int? {
        let count = servers.count
        var fallback: (index: Int, until: NIODeadline)?
        for step in 0..<count {
            let index = (next + step) % count
            guard !excluding.contains(index) else { continue }
            if let until = downUntil[index], until > now {
                if fallback == nil || until < fallback!.until { fallback = (index, until) }
                continue
            }
            downUntil[index] = nil
            next = (index + 1) % count
            return index
        }
        return fallback?.index
    }

    /// The server failed to connect (or to answer at all): leave it out for a while.
    public func failed(_ index: Int, now: NIODeadline = .now()) {
        downUntil[index] = now + failTimeout
    }

    /// Whether the server is left out at `now`.
    public func isDown(_ index: Int, now: NIODeadline = .now()) -> Bool {
        downUntil[index].map { $0 > now } ?? false
    }
}
