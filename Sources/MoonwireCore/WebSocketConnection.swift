// One open WebSocket as the rest of the server sees it: an identity and the methods that
// reach the socket from any thread (broadcasts come from every event loop).
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization

/// A WebSocket connection. Thread-safe: every method hops to the connection's event loop.
public final class WebSocketConnection: Sendable {
    /// The connection's unique id (sgcWebSockets' Guid).
    public let guid: String
    /// The subprotocol agreed in the handshake, if any.
    public let subprotocol: String?
    /// Who is connected.
    public let peer: ConnectionInfo
    /// Whether the WebSocket runs on an HTTP/2 stream (RFC 8441) rather than an upgraded
    /// HTTP/1.1 connection. A flag rather than a string: every open connection keeps it.
    public let overHTTP2: Bool
    /// The HTTP version that carried the handshake: "2" or "1.1".
    public var version: String { overHTTP2 ? "2" : "1.1" }
    /// The headers of the handshake request (unpacked on each reading; see PackedHeaders).
    public var headers: HTTPHeaders { handshakeHeaders.headers }
    private let handshakeHeaders: PackedHeaders
    /// The loop that owns the socket.
    public let eventLoop: EventLoop
    /// The connection's frame handler, until it is gone; read and written on `eventLoop` only
    /// (`frames`). Not an `NIOLoopBoundBox`: a broadcast reads it for every member, and the box
    /// is one more object per connection to keep and to fetch from memory.
    private nonisolated(unsafe) var handler: WebSocketFrameHandler?
    private let open = Atomic<Bool>(true)

    init(
        subprotocol: String?, peer: ConnectionInfo, headers: HTTPHeaders, overHTTP2: Bool, handler: WebSocketFrameHandler,
        eventLoop: EventLoop
    ) {
        self.guid = Self.makeGUID()
        self.subprotocol = subprotocol
        self.peer = peer
        self.overHTTP2 = overHTTP2
        self.handshakeHeaders = PackedHeaders(headers)
        self.eventLoop = eventLoop
        self.handler = handler
    }

    /// False as soon as the connection is closing or gone: a close frame was sent or received
    /// (a protocol error sends one), or the connection ended; `webSocketClosed` comes after.
    /// Readable from any thread, so a script's `ws:send` can say its message will not arrive
    /// instead of queueing it for a connection that is going away.
    public var isOpen: Bool { open.load(ordering: .acquiring) }

    /// Sends a text message (the bytes must be UTF-8).
    public func send(text: ByteBuffer) { send(.text, text) }

    /// Sends a binary message.
    public func send(binary: ByteBuffer) { send(.binary, binary) }

    /// Sends a message whose kind the caller was told (a script's `binary` flag, a bus frame).
    public func send(_ payload: ByteBuffer, binary: Bool) {
        send(binary ? .binary : .text, payload)
    }

    /// A message sent on the connection's loop once its handler is in the pipeline (a script's
    /// `ws:send` in an event of this connection) goes at once, with no closure to carry it.
    private func send(_ opcode: WebSocketOpcode, _ payload: ByteBuffer) {
        if eventLoop.inEventLoop, let frames = handler, frames.isAdded { return frames.send(opcode: opcode, payload) }
        onLoop { $0.send(opcode: opcode, payload) }
    }

    /// Sends a ping.
    public func ping(_ data: ByteBuffer = ByteBuffer()) { onLoop { $0.send(opcode: .ping, data) } }

    /// Starts the closing handshake with a code and a reason.
    public func close(code: UInt16 = 1000, reason: String = "") { onLoop { $0.closeInOrder(code: code, reason: reason) } }

    /// The frame handler, read on the connection's loop.
    private var frames: WebSocketFrameHandler? {
        assert(eventLoop.inEventLoop)
        return handler
    }

    /// Stops delivering this connection's messages (and reading its socket) until
    /// `releaseReading`: the delegate's handler of the last one is still busy. On the
    /// connection's loop only.
    public func holdReading() {
        frames?.holdReading()
    }

    /// Delivers the messages held back by `holdReading` and reads on. On the connection's
    /// loop only.
    public func releaseReading() {
        frames?.releaseReading()
    }

    /// The closing handshake started or the connection ended; called on the connection's loop.
    func markClosing() {
        open.store(false, ordering: .releasing)
    }

    func detach() {
        assert(eventLoop.inEventLoop)
        handler = nil
    }

    private func onLoop(_ action: @escaping (WebSocketFrameHandler) -> Void) {
        if eventLoop.inEventLoop {
            handler?.whenAdded(action)
            return
        }
        let send = UnsafeTransfer(action)
        eventLoop.execute { self.frames?.whenAdded(send.value) }
    }

    /// A random version-4-style UUID string, the id of a channel subscriber. Written in place,
    /// so the string is allocated once at its size (every open connection keeps it).
    static func makeGUID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, digits: Int, dash: Bool = true) {
                for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
                    let digit = UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF
                    buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") - 10 + digit
                    index += 1
                }
                guard dash else { return }
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, digits: 8)
            put(high >> 16, digits: 4)
            put(high, digits: 4)
            put(low >> 48, digits: 4)
            put(low, digits: 12, dash: false)
            return index
        }
    }
}

extension WebSocketConnection: ChannelSubscriber {
    public var takesEvents: Bool { false }

    public func deliverOnLoop(_ message: ChannelMessage, flush: Bool) {
        frames?.deliverBroadcast(message, flush: flush)
    }
}

/// Carries a non-Sendable value (a closure) to the loop it will be used on; only for values
/// used on that loop alone.
public struct UnsafeTransfer<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
