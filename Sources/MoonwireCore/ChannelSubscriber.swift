// What a channel broadcast reaches: WebSockets and server-sent-event streams alike, so one
// publish serves both kinds of clients. Each subscriber is delivered on its own event loop,
// in one hop per loop for all of that loop's subscribers, with no script call per delivery.
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
    /// Sends a published message; called on `eventLoop` only.
    func deliverOnLoop(_ message: ChannelMessage)
}

extension ChannelMessage {
    /// Delivers `message` to `subscribers`, hopping once to each of their event loops.
    static func deliver(_ message: ChannelMessage, to subscribers: [any ChannelSubscriber]) {
        var byLoop: [ObjectIdentifier: (loop: EventLoop, members: [any ChannelSubscriber])] = [:]
        for subscriber in subscribers {
            byLoop[ObjectIdentifier(subscriber.eventLoop), default: (subscriber.eventLoop, [])].members.append(subscriber)
        }
        for (loop, members) in byLoop.values {
            if loop.inEventLoop {
                for member in members { member.deliverOnLoop(message) }
            } else {
                loop.execute { for member in members { member.deliverOnLoop(message) } }
            }
        }
    }
}
