// The server's one outbound HTTP client (moonwire.http), an AsyncHTTPClient `HTTPClient` on the
// server's own event loops. A request made from a loop's VM runs its connection on that loop
// and answers there, so the Lua call resumes with no thread hop; AsyncHTTPClient keeps its
// keep-alive pools per loop for such requests, speaks HTTP/2 where TLS's ALPN offers it, and
// verifies certificates against the system store. What AsyncHTTPClient decides per client and
// moonwire.http needs per request (following redirects) is done by the binding instead.
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL

/// The outbound HTTP client of one server, shared by every VM.
public final class OutboundHTTP: Sendable {
    /// How long opening a connection may take (TCP and TLS), whatever the request's timeout.
    static let connectTimeout: Double = 10
    /// Idle keep-alive connections kept per upstream (host, port and TLS settings), over all
    /// loops: AsyncHTTPClient's default of 8 would make every connection past the 8th a
    /// one-request connection under a handler that keeps 64 requests in flight.
    static let idleConnectionsPerUpstream = 256

    private let client: HTTPClient

    /// A client whose connections live on `group`'s loops (the server's).
    public init(group: EventLoopGroup) {
        var configuration = HTTPClient.Configuration()
        // Per request instead (see LuaHTTPClient.swift): the option is moonwire.http's.
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .nanoseconds(Int64(Self.connectTimeout * 1e9)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.idleConnectionsPerUpstream
        // A refused connection is the script's answer at once, not after retries for the
        // connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .disabled
        configuration.tracing.tracer = nil
        self.client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    }

    /// Starts a request whose answer comes back on `eventLoop`. A loop of the server's group
    /// also carries the connection; another one (a worker VM's) takes its answer from whichever
    /// loop did, through one hop.
    func execute(
        _ request: HTTPClient.Request, collector: HTTPResponseCollector, on eventLoop: EventLoop, ownLoop: Bool,
        deadline: NIODeadline
    ) -> HTTPClient.Task<HTTPResponseCollector.Response> {
        client.execute(
            request: request, delegate: collector, eventLoop: ownLoop ? .delegateAndChannel(on: eventLoop) : .indifferent,
            deadline: deadline, logger: nil)
    }

    /// Closes the pooled connections and fails the requests still in flight. Call it once the
    /// listeners stopped and before the loops' group shuts down, from outside the loops.
    public func shutdown() {
        do {
            try client.syncShutdown()
        } catch {
            // Requests still in flight end as failures; nothing is left to close.
        }
    }
}
