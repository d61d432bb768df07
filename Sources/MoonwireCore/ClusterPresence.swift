// Presence: which connections every node of the cluster holds, for
// moonwire.connections{cluster = true}. Each node sends a heartbeat every two seconds on its
// bus loop (PresenceLedger says what: the changes since the last one, and the TTL renewed),
// so a node that dies disappears from the list at most six seconds later, when its hash
// expires. Reading is one EVAL: the nodes' set, each node's hash, and the names of nodes whose
// hash is gone pruned from the set, in one round trip.
import Foundation
import NIOCore

/// One node's presence heartbeats, confined to `eventLoop` (the bus's).
public final class ClusterPresence: @unchecked Sendable {
    /// How often a node renews its entries.
    public static let interval = TimeAmount.seconds(2)
    /// How long a node's entries outlive its last heartbeat: three heartbeats.
    public static let expiry = TimeAmount.seconds(6)

    public let node: String
    private let registry: WebSocketRegistry
    private let client: RedisClient
    private let eventLoop: EventLoop
    private var ledger: PresenceLedger
    private var heartbeat: RepeatedTask?
    private var beating = false

    init(node: String, registry: WebSocketRegistry, client: RedisClient, eventLoop: EventLoop) {
        self.node = node
        self.registry = registry
        self.client = client
        self.eventLoop = eventLoop
        ledger = PresenceLedger(node: node, ttlMilliseconds: Int(Self.expiry.nanoseconds / 1_000_000))
    }

    /// Starts the heartbeats (on the loop).
    func start() {
        heartbeat = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.interval) { [weak self] _ in
            self?.beat()
        }
    }

    /// Stops the heartbeats and removes the node's entries (on the loop); `done` runs once
    /// Redis answered or failed.
    func stop(_ done: @escaping () -> Void) {
        heartbeat?.cancel()
        heartbeat = nil
        let leave = ledger.leave
        for (index, command) in leave.enumerated() {
            client.call(command) { _ in if index == leave.count - 1 { done() } }
        }
    }

    private func beat() {
        // Not after stop: a rewrite would bring back the hash the node just deleted.
        guard !beating, heartbeat != nil else { return }
        var current: [String: [UInt8]] = [:]
        for entry in registry.presenceEntries() { current[entry.guid] = entry.json }
        let beat = ledger.beat(current)
        beating = true
        var replies: [RedisReply] = []
        var failure: String?
        var remaining = beat.commands.count
        for command in beat.commands {
            client.call(command) { [self] result in
                switch result {
                case .success(let reply): replies.append(reply)
                case .failure(let error): failure = failure ?? error.description
                }
                remaining -= 1
                guard remaining == 0 else { return }
                beating = false
                let wasFull = ledger.needsFull
                if failure != nil { ledger.failed() } else { ledger.completed(beat, replies: replies) }
                // A hash found lost is rewritten now, not a heartbeat later.
                if failure == nil, ledger.needsFull, !wasFull { self.beat() }
            }
        }
    }

    /// The command that reads every other node's entries (EVAL of `readScript`).
    public var readCommand: [[UInt8]] {
        [Array("EVAL".utf8), Array(Self.readScript.utf8), Array("1".utf8), Array(PresenceKeys.nodes.utf8),
         Array(PresenceKeys.nodePrefix.utf8), Array(node.utf8)]
    }

    /// Returns `{node, {entry json...}, node, {...}}` for the nodes but ARGV[2] whose hash
    /// exists, and removes the others from the set.
    static let readScript = """
        local out = {}
        for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          if node ~= ARGV[2] then
            local entries = redis.call('HVALS', ARGV[1] .. node)
            if #entries == 0 then redis.call('SREM', KEYS[1], node)
            else out[#out + 1] = node; out[#out + 1] = entries end
          end
        end
        return out
        """

    /// The entries in a reply of `readCommand`; malformed ones are skipped.
    public static func entries(from reply: RedisReply) -> [PresenceEntry] {
        guard case .array(let items) = reply else { return [] }
        var entries: [PresenceEntry] = []
        for pair in stride(from: 0, to: items.count - 1, by: 2) {
            guard case .bulk(let name) = items[pair], case .array(let values) = items[pair + 1] else { continue }
            let node = String(decoding: name, as: UTF8.self)
            for case .bulk(let json) in values {
                if let entry = decode(json, node: node) { entries.append(entry) }
            }
        }
        return entries
    }

    static func decode(_ json: [UInt8], node: String) -> PresenceEntry? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let guid = object["guid"] as? String, let remoteIP = object["remote_ip"] as? String
        else { return nil }
        let channels = object["channels"] as? [String] ?? []
        return PresenceEntry(guid: guid, remoteIP: remoteIP, subprotocol: object["protocol"] as? String, channels: channels, node: node)
    }
}

extension WebSocketRegistry {
    /// The open WebSockets as presence entries, naming `node` when given.
    public func presenceEntries(node: String? = nil) -> [PresenceEntry] {
        all().map { entry in
            PresenceEntry(
                guid: entry.connection.guid, remoteIP: entry.connection.peer.remoteIP, subprotocol: entry.connection.subprotocol,
                channels: entry.channels, node: node)
        }
    }
}
