// Every open WebSocket of the server by GUID, and the channels they and server-sent-event
// streams subscribed to; the sgcWebSockets' connection list, WriteData and Broadcast,
// reachable from every event loop.
import NIOConcurrencyHelpers
import NIOCore

/// The server's open WebSockets, and the channel members (WebSockets and event streams).
/// Thread-safe; a broadcast takes the lock once to find the recipients and sends outside it.
/// A channel's recipients are kept between broadcasts until its membership changes, so a
/// broadcast to 10,000 members copies no list, and each event loop's FanoutOutbox can tell
/// broadcasts to the same members apart from others.
public final class WebSocketRegistry: Sendable {
    private struct State {
        var connections: [String: WebSocketConnection] = [:]
        var channelsOf: [String: Set<String>] = [:]
        var members: [String: [String: any ChannelSubscriber]] = [:]
        /// The recipients of a text broadcast to each channel, as of its current members.
        var recipients: [String: ChannelRecipients] = [:]
        var outboxes: [ObjectIdentifier: FanoutOutbox] = [:]
        /// Told when a channel gains its first member or loses its last (the cluster's bus).
        var channelsObserver: (@Sendable () -> Void)?
        /// A channel came or went under the lock: the observer is told once it is released.
        var channelSetChanged = false

        /// The outbox of a loop, made on first use.
        mutating func outbox(_ loop: EventLoop) -> FanoutOutbox {
            if let outbox = outboxes[ObjectIdentifier(loop)] { return outbox }
            let outbox = FanoutOutbox(eventLoop: loop)
            outboxes[ObjectIdentifier(loop)] = outbox
            return outbox
        }

        mutating func changed(_ channel: String) {
            recipients[channel] = nil
            if members[channel]?.isEmpty == true {
                members[channel] = nil
                channelSetChanged = true
            }
        }

        /// The observer to tell, if a channel came or went since the last call.
        mutating func takeChannelSetChange() -> (@Sendable () -> Void)? {
            defer { channelSetChanged = false }
            return channelSetChanged ? channelsObserver : nil
        }
    }

    private let state = NIOLockedValueBox(State())

    /// Creates an empty registry.
    public init() {}

    /// Runs `body` under the lock, then tells the channels' observer if a channel came or went
    /// (outside the lock: it may read the registry).
    private func changing<Result>(_ body: (inout State) -> Result) -> Result {
        let (result, observer) = state.withLockedValue { state in (body(&state), state.takeChannelSetChange()) }
        observer?()
        return result
    }

    /// Sets what is told (on any thread, after the change) when a channel gains its first
    /// member or loses its last; it reads `channelNames` for the set as of then.
    public func observeChannels(_ observer: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.channelsObserver = observer }
    }

    /// The channels with at least one member.
    public func channelNames() -> Set<String> {
        state.withLockedValue { Set($0.members.keys) }
    }

    /// The outbox of broadcasts of `loop`.
    func outbox(on loop: EventLoop) -> FanoutOutbox {
        state.withLockedValue { $0.outbox(loop) }
    }

    func add(_ connection: WebSocketConnection) {
        state.withLockedValue { $0.connections[connection.guid] = connection }
    }

    func remove(_ connection: WebSocketConnection) {
        changing { state in
            state.connections[connection.guid] = nil
            Self.leaveAll(connection.guid, &state)
        }
    }

    /// Removes a subscriber that is not a WebSocket (an event stream) from its channels.
    func remove(_ subscriber: any ChannelSubscriber) {
        changing { Self.leaveAll(subscriber.guid, &$0) }
    }

    private static func leaveAll(_ guid: String, _ state: inout State) {
        for channel in state.channelsOf.removeValue(forKey: guid) ?? [] {
            state.members[channel]?[guid] = nil
            state.changed(channel)
        }
    }

    /// The connection with this GUID, if it is open.
    public func connection(_ guid: String) -> WebSocketConnection? {
        state.withLockedValue { $0.connections[guid] }
    }

    /// Adds a connection to a channel.
    public func subscribe(_ guid: String, to channel: String) {
        changing { state in
            guard let connection = state.connections[guid] else { return }
            Self.join(connection, channel, &state)
        }
    }

    /// Adds an event stream to a channel.
    func subscribe(_ subscriber: any ChannelSubscriber, to channel: String) {
        changing { Self.join(subscriber, channel, &$0) }
    }

    private static func join(_ subscriber: any ChannelSubscriber, _ channel: String, _ state: inout State) {
        state.channelsOf[subscriber.guid, default: []].insert(channel)
        if state.members[channel] == nil { state.channelSetChanged = true }
        state.members[channel, default: [:]][subscriber.guid] = subscriber
        state.changed(channel)
    }

    /// Removes a connection from a channel.
    public func unsubscribe(_ guid: String, from channel: String) {
        changing { state in
            state.channelsOf[guid]?.remove(channel)
            state.members[channel]?[guid] = nil
            state.changed(channel)
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

    /// Who a broadcast reaches: WebSockets, and with a channel, the event streams subscribed
    /// to it (unless a subprotocol or binary is asked for, which they do not have).
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

    /// The WebSockets a filter selects.
    public func select(_ filter: Filter) -> [WebSocketConnection] {
        state.withLockedValue { Self.candidates(filter, binary: false, $0) }.compactMap { $0 as? WebSocketConnection }
    }

    /// Closes every WebSocket (disconnect_all, here and from the other nodes).
    public func closeAll(code: UInt16, reason: String) {
        for connection in select(.init()) { connection.close(code: code, reason: reason) }
    }

    /// Sends a message to everyone the filter selects, on each one's own loop (by its
    /// FanoutOutbox), and returns how many it was queued to. An event stream gets it as one
    /// `data` event, encoded once.
    @discardableResult
    public func publish(_ payload: ByteBuffer, binary: Bool, to filter: Filter) -> Int {
        let recipients = state.withLockedValue { state in
            guard let channel = filter.channel, !binary, filter.subprotocol == nil, filter.guids == nil, filter.exclude.isEmpty else {
                return ChannelRecipients(Self.candidates(filter, binary: binary, state)) { state.outbox($0) }
            }
            if let known = state.recipients[channel] { return known }
            let made = ChannelRecipients(Array((state.members[channel] ?? [:]).values)) { state.outbox($0) }
            state.recipients[channel] = made
            return made
        }
        let event = recipients.takesEvents ? ServerSentEvent.encodedMessage(payload) : nil
        let message = ChannelMessage(payload: payload, binary: binary, event: event)
        for group in recipients.groups { group.outbox.post(message, to: group.members) }
        return recipients.count
    }

    private static func candidates(_ filter: Filter, binary: Bool, _ state: State) -> [any ChannelSubscriber] {
        let candidates: [any ChannelSubscriber]
        if let channel = filter.channel {
            candidates = Array((state.members[channel] ?? [:]).values)
        } else if let guids = filter.guids {
            candidates = guids.compactMap { state.connections[$0] }
        } else {
            candidates = Array(state.connections.values)
        }
        return candidates.filter { subscriber in
            let socket = subscriber as? WebSocketConnection
            if socket == nil, binary || filter.subprotocol != nil { return false }
            return (filter.subprotocol == nil || socket?.subprotocol == filter.subprotocol)
                && (filter.guids == nil || filter.guids!.contains(subscriber.guid))
                && !filter.exclude.contains(subscriber.guid)
        }
    }
}
