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
    /// A broadcast to this subscriber waits in its loop's outbox (a large fan-out, spread over
    /// several turns of the loop): what the subscriber is sent meanwhile by other means must
    /// wait for it, so the order of its messages is the order they were sent in. Called on
    /// `eventLoop` only; every call is followed by one `deliverOnLoop(_:queued: true, flush:)`.
    func broadcastQueued()
    /// Sends a published message; called on `eventLoop` only. `queued`: it is the delivery of
    /// an earlier `broadcastQueued`. `flush`: the last of the messages delivered in a row to
    /// this subscriber, after which what was written goes out in one system call.
    func deliverOnLoop(_ message: ChannelMessage, queued: Bool, flush: Bool)
}

extension ChannelSubscriber {
    /// A subscriber whose other sends need not wait for broadcasts.
    public func broadcastQueued() {}
}

/// The members of a channel on one event loop, as of one membership: a class so that the
/// outbox can tell that two broadcasts go to the same members (and deliver both to each member
/// in one write) by identity.
final class ChannelMembers: Sendable {
    let list: [any ChannelSubscriber]
    init(_ list: [any ChannelSubscriber]) { self.list = list }
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
