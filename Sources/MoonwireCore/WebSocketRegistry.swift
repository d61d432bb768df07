// Every open WebSocket of the server by GUID, and the channels they subscribed to; the
// sgcWebSockets' connection list, WriteData and Broadcast, reachable from every event loop.
import NIOConcurrencyHelpers
import NIOCore

/// The server's open WebSockets. Thread-safe; a broadcast takes the lock once to copy the
/// recipients and sends outside it.
public final class WebSocketRegistry: Sendable {
    private struct State {
        var connections: [String: WebSocketConnection] = [:]
        var channelsOf: [String: Set<String>] = [:]
        var members: [String: Set<String>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Creates an empty registry.
    public init() {}

    func add(_ connection: WebSocketConnection) {
        state.withLockedValue { $0.connections[connection.guid] = connection }
    }

    func remove(_ connection: WebSocketConnection) {
        state.withLockedValue { state in
            state.connections[connection.guid] = nil
            for channel in state.channelsOf.removeValue(forKey: connection.guid) ?? [] {
                state.members[channel]?.remove(connection.guid)
                if state.members[channel]?.isEmpty == true { state.members[channel] = nil }
            }
        }
    }

    /// The connection with this GUID, if it is open.
    public func connection(_ guid: String) -> WebSocketConnection? {
        state.withLockedValue { $0.connections[guid] }
    }

    /// Adds a connection to a channel.
    public func subscribe(_ guid: String, to channel: String) {
        state.withLockedValue { state in
            guard state.connections[guid] != nil else { return }
            state.channelsOf[guid, default: []].insert(channel)
            state.members[channel, default: []].insert(guid)
        }
    }

    /// Removes a connection from a channel.
    public func unsubscribe(_ guid: String, from channel: String) {
        state.withLockedValue { state in
            state.channelsOf[guid]?.remove(channel)
            state.members[channel]?.remove(guid)
            if state.members[channel]?.isEmpty == true { state.members[channel] = nil }
        }
    }

    /// The channels a connection is in.
    public func channels(of guid: String) -> [String] {
        state.withLockedValue { ($0.channelsOf[guid] ?? []).sorted() }
    }

    /// Every open connection with its channels.
    public func all() -> [(connection: WebSocketConnection, channels: [String])] {
        state.withLockedValue { state in
            state.connections.values.map { ($0, (state.channelsOf[$0.guid] ?? []).sorted()) }
        }
    }

    /// Who a broadcast reaches.
    public struct Filter: Sendable {
        /// Only members of this channel.
        public var channel: String?
        /// Only connections that agreed on this subprotocol.
        public var subprotocol: String?
        /// Only these GUIDs.
        public var guids: Set<String>?
        /// Not these GUIDs.
        public var exclude: Set<String> = []

        /// Everyone.
        public init() {}
    }

    /// The connections a filter selects.
    public func select(_ filter: Filter) -> [WebSocketConnection] {
        state.withLockedValue { state in
            let candidates: [WebSocketConnection]
            if let channel = filter.channel {
                candidates = (state.members[channel] ?? []).compactMap { state.connections[$0] }
            } else if let guids = filter.guids {
                candidates = guids.compactMap { state.connections[$0] }
            } else {
                candidates = Array(state.connections.values)
            }
            return candidates.filter { connection in
                (filter.subprotocol == nil || connection.subprotocol == filter.subprotocol)
                    && (filter.guids == nil || filter.guids!.contains(connection.guid))
                    && !filter.exclude.contains(connection.guid)
            }
        }
    }

}
