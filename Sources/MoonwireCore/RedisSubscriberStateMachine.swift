// The state of a node's one subscriber connection to Redis: which Redis channels it should
// listen on, which it asked for on this connection, the handshake, the replies of subscribe
// mode, a PING each heartbeat so that a Redis that stopped answering (a host gone without a
// reset, a process stopped) is noticed, and the reconnects with back-off after Redis went away
// (resubscribing everything).
// It returns what to do and touches no socket, so it is tested without one (RedisSubscriber
// drives it).
import NIOCore

/// A subscribe-mode connection through connect, handshake (AUTH), SUBSCRIBE, and reconnects.
public struct RedisSubscriberStateMachine {
    public enum Phase: Equatable {
        /// Not started, or stopped for good.
        case idle, stopped
        case connecting
        /// Connected, awaiting the handshake's replies (AUTH), then the first SUBSCRIBE's
        /// confirmation, before the link is up.
        case linking(handshakeReplies: Int, subscribing: Bool)
        /// Subscribed: messages flow.
        case linked
        /// The last attempt failed or the link broke; a timer asks again (`retryDue`).
        case waitingToRetry
    }

    /// What the driver does, in order.
    public enum Action: Equatable {
        /// Open a connection (then call `connected` or `connectionLost`).
        case connect
        /// Write these commands.
        case send([[String]])
        /// A message arrived on a Redis channel.
        case deliver(topic: String, payload: [UInt8])
        /// The link is up: the handshake passed and the subscriptions are in place.
        case linkUp
        /// The link that was up is down.
        case linkDown
        /// Why an attempt failed or the link broke.
        case failed(String)
        /// Call `retryDue` after this long.
        case retry(after: TimeAmount)
        /// Close the connection (it then reports `connectionLost`, unless stopped).
        case close(String)
        /// A reply that means nothing here, worth a log line.
        case unexpected(String)
    }

    public private(set) var phase = Phase.idle
    /// The Redis channels the node needs.
    public private(set) var wanted: Set<String> = []
    /// The Redis channels asked for on this connection (SUBSCRIBE sent, no UNSUBSCRIBE since).
    public private(set) var requested: Set<String> = []
    /// Failed attempts in a row: the back-off doubles with each (as RedisClient's).
    public private(set) var failures = 0
    /// AUTH, sent first on every connection.
    private let handshake: [[String]]
    /// A heartbeat passed since the last reply: at the next, without a reply, the link is dead.
    private var awaitingReply = false

    public init(handshake: [[String]]) {
        self.handshake = handshake
    }

    public mutating func start() -> [Action] {
        guard phase == .idle else { return [] }
        phase = .connecting
        return [.connect]
    }

    /// The node needs `topics` now: on a live connection, the SUBSCRIBE and UNSUBSCRIBE that
    /// get there; otherwise they are asked for on the next connection.
    public mutating func want(_ topics: Set<String>) -> [Action] {
        wanted = topics
        switch phase {
        case .linking, .linked:
            let commands = synchronizingCommands()
            return commands.isEmpty ? [] : [.send(commands)]
        default: return []
        }
    }

    /// The connection is open: the handshake and the subscriptions, in one write.
    public mutating func connected() -> [Action] {
        guard phase == .connecting else { return [.close("a connection nobody waits for")] }
        requested = []
        awaitingReply = false
        let subscribe = synchronizingCommands()
        guard !handshake.isEmpty || !subscribe.isEmpty else {
            phase = .linked
            failures = 0
            return [.linkUp]
        }
        phase = .linking(handshakeReplies: handshake.count, subscribing: !subscribe.isEmpty)
        return [.send(handshake + subscribe)]
    }

    /// A whole reply arrived.
    public mutating func received(_ reply: RedisReply) -> [Action] {
        awaitingReply = false
        switch phase {
        case .linking(let handshakeReplies, let subscribing):
            if case .error(let message) = reply { return [.close("the handshake failed: \(message)")] }
            if handshakeReplies > 0 {
                guard handshakeReplies == 1, !subscribing else {
                    phase = .linking(handshakeReplies: handshakeReplies - 1, subscribing: subscribing)
                    return []
                }
                phase = .linked
                failures = 0
                return [.linkUp]
            }
            phase = .linked
            failures = 0
            return [.linkUp] + classify(reply)
        case .linked: return classify(reply)
        default: return []
        }
    }

    /// A heartbeat interval (`seconds`) passed: a PING on a live link, and the close of one
    /// that answered nothing, not even the last PING, since the last heartbeat.
    public mutating func heartbeatDue(seconds: Double) -> [Action] {
        switch phase {
        case .linking, .linked:
            if awaitingReply { return [.close("no reply within \(seconds) s")] }
            awaitingReply = true
            return phase == .linked ? [.send([["PING"]])] : []
        default: return []
        }
    }

    /// The attempt failed or the connection closed.
    public mutating func connectionLost(reason: String) -> [Action] {
        guard phase != .stopped, phase != .idle else { return [] }
        let wasLinked = phase == .linked
        phase = .waitingToRetry
        requested = []
        failures += 1
        return (wasLinked ? [.linkDown] : []) + [.failed(reason), .retry(after: RedisClientStateMachine.backoff(after: failures))]
    }

    /// The back-off is over: try again.
    public mutating func retryDue() -> [Action] {
        guard phase == .waitingToRetry else { return [] }
        phase = .connecting
        return [.connect]
    }

    /// Stops for good; no events follow.
    public mutating func stop() -> [Action] {
        let open = phase != .idle && phase != .waitingToRetry && phase != .stopped
        phase = .stopped
        return open ? [.close("the node stops")] : []
    }

    private mutating func synchronizingCommands() -> [[String]] {
        let subscribe = wanted.subtracting(requested).sorted()
        let unsubscribe = requested.subtracting(wanted).sorted()
        requested = wanted
        var commands: [[String]] = []
        if !subscribe.isEmpty { commands.append(["SUBSCRIBE"] + subscribe) }
        if !unsubscribe.isEmpty { commands.append(["UNSUBSCRIBE"] + unsubscribe) }
        return commands
    }

    /// What a reply of subscribe mode says: a message, a confirmation, or something odd.
    private func classify(_ reply: RedisReply) -> [Action] {
        switch reply {
        case .array(let parts):
            guard let first = parts.first, case .bulk(let kind) = first else { break }
            switch (String(decoding: kind, as: UTF8.self), parts.count) {
            case ("message", 3):
                guard case .bulk(let topic) = parts[1], case .bulk(let payload) = parts[2] else { break }
                return [.deliver(topic: String(decoding: topic, as: UTF8.self), payload: payload)]
            case ("subscribe", 3), ("unsubscribe", 3), ("pong", _): return []
            default: break
            }
        case .error(let message): return [.unexpected("Redis answered an error: \(message)")]
        default: break
        }
        return [.unexpected("a reply subscribe mode does not give: \(Self.summary(reply))")]
    }

    /// A reply in a few words (a log line must not carry a whole payload).
    private static func summary(_ reply: RedisReply) -> String {
        switch reply {
        case .status(let text): "status \(text.prefix(64))"
        case .bulk(let bytes): "a string of \(bytes.count) bytes"
        case .integer(let value): "integer \(value)"
        case .null: "null"
        case .array(let parts): "an array of \(parts.count)"
        case .error(let message): "error \(message.prefix(64))"
        }
    }
}
