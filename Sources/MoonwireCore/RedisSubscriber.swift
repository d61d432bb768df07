// A node's one connection to Redis in subscribe mode (RESP2 SUBSCRIBE): it listens on the
// Redis channels the node needs, reports the link going up and down, and after Redis went away
// connects again with a doubling back-off and subscribes to everything anew. The decisions are
// RedisSubscriberStateMachine's; this drives the socket and the retry timer.
import Logging
import NIOCore

/// A change of the link to Redis, for OnLoadBalancerConnect, OnLoadBalancerDisconnect and
/// OnLoadBalancerError.
public enum ClusterLinkEvent: Equatable, Sendable {
    case connected
    case disconnected
    case error(String)
}

/// The subscriber connection, confined to `eventLoop`.
final class RedisSubscriber {
    let endpoint: RedisEndpoint
    let eventLoop: EventLoop
    private let logger: Logger
    private var state: RedisSubscriberStateMachine
    private var connection: RedisConnection?
    private var retry: Scheduled<Void>?
    private var heartbeat: Scheduled<Void>?
    /// Each message, with the Redis channel it came on.
    var onMessage: ((String, [UInt8]) -> Void)?
    /// Each change of the link.
    var onLink: ((ClusterLinkEvent) -> Void)?

    init(endpoint: RedisEndpoint, eventLoop: EventLoop, logger: Logger) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.logger = logger
        // Pub/sub ignores the database: AUTH is the whole handshake.
        state = RedisSubscriberStateMachine(handshake: endpoint.handshake.filter { $0[0] == "AUTH" })
    }

    /// Connects, and checks the link every `endpoint.timeout` seconds.
    func start() {
        scheduleHeartbeat()
        perform(state.start())
    }

    private func scheduleHeartbeat() {
        heartbeat = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(endpoint.timeout * 1e9))) { [weak self] in
            guard let self, heartbeat != nil else { return }
            perform(state.heartbeatDue(seconds: endpoint.timeout))
            scheduleHeartbeat()
        }
    }

    /// Listens on exactly `topics` from now on.
    func want(_ topics: Set<String>) { perform(state.want(topics)) }

    func stop() {
        retry?.cancel()
        retry = nil
        heartbeat?.cancel()
        heartbeat = nil
        perform(state.stop())
    }

    private func perform(_ actions: [RedisSubscriberStateMachine.Action]) {
        for action in actions {
            switch action {
            case .connect: connect()
            case .send(let commands):
                var bytes = ByteBuffer()
                for command in commands { RedisCommand.format(command.map { Array($0.utf8) }, into: &bytes) }
                connection?.write(bytes)
            case .deliver(let topic, let payload): onMessage?(topic, payload)
            case .linkUp:
                logger.info("cluster: linked to redis \(endpoint.target)")
                onLink?(.connected)
            case .linkDown: onLink?(.disconnected)
            case .failed(let reason): onLink?(.error("redis \(endpoint.target): \(reason)"))
            case .retry(let delay):
                logger.warning("cluster: redis \(endpoint.target) unreachable (next try in \(delay.nanoseconds / 1_000_000) ms)")
                retry = eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
                    guard let self else { return }
                    retry = nil
                    perform(state.retryDue())
                }
            case .close(let reason): connection?.close(reason: reason)
            case .unexpected(let what): logger.warning("cluster: \(what)")
            }
        }
    }

    private func connect() {
        RedisConnection.open(endpoint, on: eventLoop) { [self] result in
            switch result {
            case .failure(let failure): perform(state.connectionLost(reason: failure.description))
            case .success(let (connection, channel)):
                guard channel.isActive, state.phase == .connecting else {
                    channel.close(promise: nil)
                    return perform(state.connectionLost(reason: "the connection closed"))
                }
                self.connection = connection
                connection.onReply = { [weak self] reply in
                    guard let self else { return }
                    perform(state.received(reply))
                }
                connection.onClose = { [weak self] reason in
                    guard let self else { return }
                    self.connection = nil
                    perform(state.connectionLost(reason: reason))
                }
                perform(state.connected())
            }
        }
    }
}
