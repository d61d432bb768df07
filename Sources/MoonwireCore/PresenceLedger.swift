// What a node has told Redis about its connections, and the commands of its next heartbeat.
// Each node keeps one Redis hash, `moonwire:presence:<node>`, a field per connection (its
// GUID) whose value is the entry as JSON, with a TTL of three heartbeats; the set
// `moonwire:presence:nodes` names the nodes. A heartbeat sends only what changed since the
// last one that succeeded (HDEL of the GUIDs gone, HSET of the new or changed entries) and
// renews the TTL: its cost in Redis follows the changes, not the connections. A node that
// dies stops renewing, and Redis drops its hash when the TTL runs out. When the hash was lost
// (Redis restarted, the link was down longer than the TTL) or a heartbeat failed, the next one
// rewrites the hash whole, in a MULTI so a reader never sees half of it.
//
// A pure state machine: the node diffs, the caller sends the commands and reports the replies.

/// One connection as presence stores it.
public struct PresenceEntry: Equatable, Sendable {
    public var guid: String
    public var remoteIP: String
    public var subprotocol: String?
    public var channels: [String]
    /// The node that holds it (not stored in the entry: the hash it is in says).
    public var node: String?

    public init(guid: String, remoteIP: String, subprotocol: String?, channels: [String], node: String? = nil) {
        self.guid = guid
        self.remoteIP = remoteIP
        self.subprotocol = subprotocol
        self.channels = channels
        self.node = node
    }

    /// `{"guid":..,"remote_ip":..,"protocol":..,"channels":[..]}`, without the node.
    public var json: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + guid.utf8.count + remoteIP.utf8.count)
        out += Array(#"{"guid":"#.utf8)
        JSONText.append(guid, to: &out)
        out += Array(#","remote_ip":"#.utf8)
        JSONText.append(remoteIP, to: &out)
        if let subprotocol {
            out += Array(#","protocol":"#.utf8)
            JSONText.append(subprotocol, to: &out)
        }
        out += Array(#","channels":["#.utf8)
        for (index, channel) in channels.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.append(channel, to: &out)
        }
        out += Array("]}".utf8)
        return out
    }
}

/// JSON string literals, for the few strings presence stores.
enum JSONText {
    static func append(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
            case 0..<0x20:
                out += Array("\\u00".utf8)
                Hexadecimal.append(byte, to: &out)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// The Redis keys of presence.
public struct PresenceKeys: Equatable, Sendable {
    /// The set of the nodes' names.
    public static let nodes = "moonwire:presence:nodes"
    /// What precedes a node's name in the key of its hash.
    public static let nodePrefix = "moonwire:presence:node:"

    public static func node(_ name: String) -> String { nodePrefix + name }
}

/// One heartbeat: the commands to send in order, and what the ledger commits when all succeed.
public struct PresenceBeat: Sendable {
    public let commands: [[[UInt8]]]
    /// The hash is rewritten whole (MULTI ... EXEC).
    public let isFull: Bool
    let snapshot: [String: [UInt8]]
}

/// What one node has stored, and what its next heartbeat sends.
public struct PresenceLedger: Sendable {
    public let node: String
    /// The hash's TTL, renewed by each heartbeat.
    public let ttlMilliseconds: Int
    /// Largest number of GUIDs in one HSET or HDEL: a big change goes in several commands.
    static let batch = 512
    /// The entries Redis has, as of the last heartbeat that succeeded.
    private(set) var stored: [String: [UInt8]] = [:]
    /// The next heartbeat rewrites the hash (at start, after a failure or a lost hash).
    public private(set) var needsFull = true

    public init(node: String, ttlMilliseconds: Int) {
        self.node = node
        self.ttlMilliseconds = ttlMilliseconds
    }

    private var key: [UInt8] { Array(PresenceKeys.node(node).utf8) }
    private var expire: [[UInt8]] { [Array("PEXPIRE".utf8), key, Array(String(ttlMilliseconds).utf8)] }
    private var register: [[UInt8]] { [Array("SADD".utf8), Array(PresenceKeys.nodes.utf8), Array(node.utf8)] }

    /// The heartbeat for the node's entries now (JSON by GUID).
    public func beat(_ current: [String: [UInt8]]) -> PresenceBeat {
        if needsFull {
            var commands: [[[UInt8]]] = [[Array("MULTI".utf8)], [Array("DEL".utf8), key]]
            commands += fieldCommands("HSET", current.sorted { $0.key < $1.key }.flatMap { [Array($0.key.utf8), $0.value] }, pairs: true)
            if !current.isEmpty { commands.append(expire) }
            commands += [register, [Array("EXEC".utf8)]]
            return PresenceBeat(commands: commands, isFull: true, snapshot: current)
        }
        let gone = stored.keys.filter { current[$0] == nil }.sorted()
        let changed = current.filter { stored[$0.key] != $0.value }.sorted { $0.key < $1.key }
        // The first PEXPIRE says whether the hash was still there.
        var commands: [[[UInt8]]] = [expire]
        commands += fieldCommands("HDEL", gone.map { Array($0.utf8) }, pairs: false)
        commands += fieldCommands("HSET", changed.flatMap { [Array($0.key.utf8), $0.value] }, pairs: true)
        if !changed.isEmpty { commands.append(expire) }
        commands.append(register)
        return PresenceBeat(commands: commands, isFull: false, snapshot: current)
    }

    private func fieldCommands(_ name: String, _ arguments: [[UInt8]], pairs: Bool) -> [[[UInt8]]] {
        let step = pairs ? Self.batch * 2 : Self.batch
        return stride(from: 0, to: arguments.count, by: step).map { start in
            [Array(name.utf8), key] + arguments[start..<min(start + step, arguments.count)]
        }
    }

    /// Records the replies of `beat` (one per command, in order).
    public mutating func completed(_ beat: PresenceBeat, replies: [RedisReply]) {
        let isError: (RedisReply) -> Bool = { if case .error = $0 { true } else { false } }
        var succeeded = replies.count == beat.commands.count && !replies.contains(where: isError)
        if beat.isFull {
            // EXEC: nil when the transaction was aborted, an array with an error when one failed.
            guard case .array(let results) = replies.last ?? .null, !results.contains(where: isError) else {
                return failed()
            }
        }
        // A hash that was gone before this heartbeat has only its changes now: rewrite it.
        if succeeded, !beat.isFull, !stored.isEmpty, case .integer(0) = replies.first ?? .null { succeeded = false }
        guard succeeded else { return failed() }
        stored = beat.snapshot
        needsFull = false
    }

    /// Records a heartbeat that got no reply (Redis down): the next one rewrites the hash.
    public mutating func failed() {
        stored = [:]
        needsFull = true
    }

    /// The commands that remove the node at once (a node that stops).
    public var leave: [[[UInt8]]] {
        [[Array("DEL".utf8), key], [Array("SREM".utf8), Array(PresenceKeys.nodes.utf8), Array(node.utf8)]]
    }
}
