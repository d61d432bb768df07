// What a channel broadcast reaches: WebSockets and server-sent-event streams alike, so one
// publish serves both kinds of clients. Each subscriber is delivered on its own event loop, by
// that loop's FanoutOutbox, with no script call per delivery.
import NIOCore

/// A message published on the registry, in the forms its subscribers send.
public struct ChannelMessage: Sendable {
    /// The payload as published.
    public let payload: ByteBuffer
    /// A binary message, which only WebSockets can carry.
    public let binary: Bool
    /// The payload as one server-sent event, encoded once for every stream it reaches; nil
    /// when the message reaches none.
    public let event: ByteBuffer?
}

/// A member of channels. Implementations are thread-safe handles to a connection.
public protocol ChannelSubscriber: AnyObject, Sendable {
    /// The subscriber's unique id (a WebSocket's GUID).
    var guid: String { get }
    /// The loop that owns the subscriber's connection.
    var eventLoop: EventLoop { get }
    /// Whether the subscriber takes server-sent events rather than WebSocket messages.
    var takesEvents: Bool { get }
    /// Sends a published message; called on `eventLoop` only. `flush`: the last of the
    /// messages delivered in a row to this subscriber, after which what was written goes out in
    /// one system call.
    func deliverOnLoop(_ message: ChannelMessage, flush: Bool)
}

/// The members of a channel on one event loop, as of one membership: a class so that the
/// outbox can tell that two broadcasts go to the same members (and deliver both to each member
/// in one write) by identity. Sendable as the registry hands it from thread to thread; its
/// index of positions is made and read on the members' loop only.
final class ChannelMembers: @unchecked Sendable {
    let list: [any ChannelSubscriber]
    private var positions: [ObjectIdentifier: Int]?

    init(_ list: [any ChannelSubscriber]) { self.list = list }

    /// Where a member is in `list`. The index is made on the first call (a member sent
    /// something while a broadcast to it waits): a broadcast that no member interrupts costs
    /// none.
    func position(of member: ObjectIdentifier) -> Int? {
        if let positions { return positions[member] }
        var made = [ObjectIdentifier: Int](minimumCapacity: list.count)
        for (index, subscriber) in list.enumerated() { made[ObjectIdentifier(subscriber)] = index }
        positions = made
        return made[member]
    }
}

/// Who a broadcast reaches, grouped by event loop, with each loop's outbox.
final class ChannelRecipients: Sendable {
    let groups: [(outbox: FanoutOutbox, members: ChannelMembers)]
    let count: Int
    /// Some recipient is an event stream: the message is encoded as an event once.
    let takesEvents: Bool

    init(_ subscribers: [any ChannelSubscriber], outbox: (EventLoop) -> FanoutOutbox) {
        var byLoop: [ObjectIdentifier: (loop: EventLoop, members: [any ChannelSubscriber])] = [:]
        var takesEvents = false
        for subscriber in subscribers {
            byLoop[ObjectIdentifier(subscriber.eventLoop), default: (subscriber.eventLoop, [])].members.append(subscriber)
            takesEvents = takesEvents || subscriber.takesEvents
        }
        groups = byLoop.values.map { (outbox: outbox($0.loop), members: ChannelMembers($0.members)) }
        count = subscribers.count
        self.takesEvents = takesEvents
    }
}
