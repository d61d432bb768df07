// The node's side of the cluster's message bus on Redis pub/sub. A broadcast, a write to a
// GUID this node does not hold, or disconnect_all is PUBLISHed for the other nodes (the local
// clients have already had it from the registry, with no round trip); what the other nodes
// publish comes in on one subscriber connection and goes to the local clients through the
// same registry. The node listens on one Redis channel per broadcast channel that has a local
// member (the registry says when the first joins and the last leaves) and on the nodes'
// channel, never one subscription per client.
//
// Pub/sub is at most once: what is published while a node's link is down is lost for it.
// The bus also carries the node's presence heartbeats (ClusterPresence) on its publishing
// connection.
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One node on the bus. Thread-safe: the methods hop to `eventLoop`, where the Redis
/// connections live.
public final class ClusterBus: @unchecked Sendable {
    /// The node's name in logs (moonwire.options{cluster = {node = ...}}).
    public let node: String
    /// The id the node's frames carry, random per process: two nodes given one name by
    /// mistake still hear each other.
    let origin = UInt64.random(in: 1...UInt64.max)
    let topics: ClusterTopics
    public let eventLoop: EventLoop
    private let registry: WebSocketRegistry
    private let logger: Logger
    /// PUBLISH goes here (pipelined: the node's messages reach Redis in the order they were sent).
    private let publisher: RedisClient
    private let subscriber: RedisSubscriber
    /// The node's connections in Redis, for moonwire.connections{cluster = true}; its
    /// heartbeats share the publisher's connection.
    public let presence: ClusterPresence
    /// A reconciliation of the subscriptions is on its way to the loop.
    private let reconcileScheduled = Atomic<Bool>(false)

    /// A bus for `registry`'s clients on Redis `endpoint`; `onLink` is called on `eventLoop`
    /// with each change of the link. Nothing connects before `start`.
    public init(
        endpoint: RedisEndpoint, node: String?, registry: WebSocketRegistry, eventLoop: EventLoop, logger: Logger,
        onLink: @escaping (ClusterLinkEvent) -> Void
    ) {
        let node = node ?? Self.defaultNodeName()
        self.node = node
        topics = ClusterTopics(database: endpoint.database)
        self.eventLoop = eventLoop
        self.registry = registry
        self.logger = logger
        publisher = RedisClient(endpoint: endpoint, eventLoop: eventLoop, logger: logger)
        subscriber = RedisSubscriber(endpoint: endpoint, eventLoop: eventLoop, logger: logger)
        presence = ClusterPresence(node: node, registry: registry, client: publisher, eventLoop: eventLoop)
        subscriber.onLink = { [publisher] event in
            // Publishing resumes with the link, not after the rest of its own back-off.
            if event == .connected { publisher.endBackoff() }
            onLink(event)
        }
    }

    /// Connects, subscribes to what the node needs, and keeps the subscriptions in step with
    /// the registry's channels.
    public func start() {
        registry.observeChannels { [weak self] in self?.scheduleReconcile() }
        eventLoop.execute { [self] in
            subscriber.onMessage = { [weak self] topic, payload in self?.received(topic: topic, payload: payload) }
            logger.info("cluster: node \(node) on redis \(subscriber.endpoint.target)")
            subscriber.want(wantedTopics())
            subscriber.start()
            presence.start()
        }
    }

    /// Removes the node's presence and closes the connections; no link events follow. The
    /// future succeeds once Redis answered the removal (or could not be reached).
    @discardableResult
    public func stop() -> EventLoopFuture<Void> {
        registry.observeChannels {}
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute { [self] in
            subscriber.stop()
            presence.stop { [publisher] in
                publisher.close()
                promise.succeed()
            }
        }
        return promise.futureResult
    }

    /// This node's open WebSockets as presence entries, with the node's name.
    public func registryEntries() -> [PresenceEntry] { registry.presenceEntries(node: node) }

    /// Sends a broadcast to the other nodes' clients that `filter` selects (this node's have it).
    public func broadcast(_ payload: ByteBuffer, binary: Bool, filter: WebSocketRegistry.Filter) {
        let message = ClusterBroadcast(
            payload: payload, binary: binary, subprotocol: filter.subprotocol, guids: filter.guids.map { $0.sorted() },
            exclude: filter.exclude.sorted())
        publish(.broadcast(message), on: filter.channel.map(topics.channel) ?? topics.nodes)
    }

    /// Sends a message to the connection `guid` if another node has it.
    public func write(guid: String, _ payload: ByteBuffer, binary: Bool) {
        publish(.write(guid: guid, payload: payload, binary: binary), on: topics.nodes)
    }

    /// Closes every WebSocket of the other nodes.
    public func disconnectAll(code: UInt16, reason: String) {
        publish(.disconnectAll(code: code, reason: reason), on: topics.nodes)
    }

    private func publish(_ message: ClusterBusMessage, on topic: String) {
        let frame = ClusterBusFrame(origin: origin, message: message).encoded()
        eventLoop.execute { [self] in
            // RedisClient logs a lost connection; a message that fails meanwhile is lost.
            publisher.call([Array("PUBLISH".utf8), Array(topic.utf8), Array(frame.readableBytesView)]) { _ in }
        }
    }

    private func received(topic: String, payload: [UInt8]) {
        let frame: ClusterBusFrame
        do {
            frame = try ClusterBusFrame(decoding: ByteBuffer(bytes: payload))
        } catch {
            logger.warning("cluster: a malformed message on \(topic) is ignored: \(error) (\(payload.count) bytes)")
            return
        }
        guard frame.origin != origin else { return }
        switch frame.message {
        case .broadcast(let broadcast):
            var filter = WebSocketRegistry.Filter()
            if topic != topics.nodes {
                guard let channel = topics.channelName(of: topic) else { return }
                filter.channel = channel
            }
            filter.subprotocol = broadcast.subprotocol
            filter.guids = broadcast.guids.map(Set.init)
            filter.exclude = Set(broadcast.exclude)
            registry.publish(broadcast.payload, binary: broadcast.binary, to: filter)
        case .write(let guid, let payload, let binary):
            guard let connection = registry.connection(guid) else { return }
            connection.send(payload, binary: binary)
        case .disconnectAll(let code, let reason):
            registry.closeAll(code: code, reason: reason)
        }
    }

    private func scheduleReconcile() {
        guard !reconcileScheduled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        eventLoop.execute { [self] in
            reconcileScheduled.store(false, ordering: .releasing)
            subscriber.want(wantedTopics())
        }
    }

    /// The nodes' channel and one per channel with a local member.
    private func wantedTopics() -> Set<String> {
        Set(registry.channelNames().map(topics.channel)).union([topics.nodes])
    }

    /// host-pid, for a node not given a name.
    private static func defaultNodeName() -> String {
        var name = [UInt8](repeating: 0, count: 256)
        let host = gethostname(&name, name.count - 1) == 0 ? String(decoding: name.prefix { $0 != 0 }, as: UTF8.self) : "node"
        return "\(host)-\(getpid())"
    }
}
