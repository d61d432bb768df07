// One WebSocket connection after the upgrade (RFC 6455): assembles messages from frames,
// enforces the protocol (masking, reserved bits, control frames, UTF-8, sizes, close codes),
// answers pings, runs the closing handshake, and reports to the delegate. NIOWebSocket does
// the framing; this is the state machine above it.
import NIOCore
import NIOWebSocket

final class WebSocketFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let environment: ConnectionEnvironment
    private let request: HTTPRequest
    private let subprotocol: String?
    private var context: ChannelHandlerContext?
    private(set) var connection: WebSocketConnection?

    /// The message being assembled from fragments.
    private var message: (isText: Bool, compressed: Bool, data: ByteBuffer, utf8: UTF8Validator)?
    /// permessage-deflate, when the handshake agreed on it.
    private let deflate: PerMessageDeflate?
    private var closeSent = false
    /// When the client last sent a frame, and whether a heartbeat ping awaits its answer.
    private var lastHeard = NIODeadline.now()
    private var heartbeatPingSent: NIODeadline?
    private var heartbeat: RepeatedTask?
    private var closeReported = false
    private var queuedBytes = 0

    init(environment: ConnectionEnvironment, request: HTTPRequest, subprotocol: String?, deflate: PerMessageDeflateParameters?) {
        self.environment = environment
        self.request = request
        self.subprotocol = subprotocol
        self.deflate = deflate.flatMap(PerMessageDeflate.init)
    }

    private var settings: WebSocketSettings { environment.webSocket }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let connection = WebSocketConnection(
            subprotocol: subprotocol, peer: request.connection, headers: request.headers, handler: self,
            eventLoop: context.eventLoop)
        self.connection = connection
        environment.webSockets.add(connection)
        startHeartbeat(context: context)
        environment.delegate.webSocketOpened(connection)
    }

    /// Checks for silence a few times per interval; pings a silent client (unless the
    /// delegate handles it) and closes one that does not answer within the timeout.
    private func startHeartbeat(context: ChannelHandlerContext) {
        let interval = settings.heartbeatInterval
        guard interval > 0 else { return }
        let tick = TimeAmount.nanoseconds(Int64(max(0.05, min(interval, settings.heartbeatTimeout) / 4) * 1e9))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            bound.value.checkHeartbeat()
        }
    }

    private func checkHeartbeat() {
        guard let connection, !closeSent else { return }
        let now = NIODeadline.now()
        if let sent = heartbeatPingSent {
            if lastHeard < sent, now - sent >= .nanoseconds(Int64(settings.heartbeatTimeout * 1e9)) {
                environment.logger.info("websocket heartbeat timeout", metadata: ["guid": "\(connection.guid)"])
                close(code: WebSocketCloseCode.goingAway, reason: "heartbeat timeout")
                closeTCP()
            }
            if lastHeard >= sent { heartbeatPingSent = nil }
            return
        }
        guard now - lastHeard >= .nanoseconds(Int64(settings.heartbeatInterval * 1e9)) else { return }
        if environment.delegate.webSocketHeartbeat(connection) {
            lastHeard = now
            return
        }
        heartbeatPingSent = now
        send(opcode: .ping, ByteBuffer(string: "moonwire"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        reportClosed(code: WebSocketCloseCode.abnormal, reason: "")
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        reportClosed(code: WebSocketCloseCode.abnormal, reason: "")
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastHeard = .now()
        guard frame.maskKey != nil else { return fail(WebSocketCloseCode.protocolError, "unmasked client frame") }
        // RSV1 marks a compressed message, on its first frame only, once permessage-deflate is on.
        let compressed = frame.rsv1
        guard !frame.rsv2, !frame.rsv3, !compressed || (deflate != nil && (frame.opcode == .text || frame.opcode == .binary))
        else { return fail(WebSocketCloseCode.protocolError, "reserved bits set") }
        switch frame.opcode {
        case .text, .binary:
            guard message == nil else { return fail(WebSocketCloseCode.protocolError, "new message inside a fragmented one") }
            message = (frame.opcode == .text, compressed, context.channel.allocator.buffer(capacity: 0), UTF8Validator())
            receive(frame, context: context)
        case .continuation:
            guard message != nil else { return fail(WebSocketCloseCode.protocolError, "continuation without a message") }
            receive(frame, context: context)
        case .ping:
            guard !closeSent else { return }
            send(opcode: .pong, frame.unmaskedData)
        case .pong:
            break
        case .connectionClose:
            receiveClose(frame)
        default:
            fail(WebSocketCloseCode.protocolError, "unknown opcode \(frame.opcode)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is IOError || error is ChannelError {
            // The peer went away (reset, broken pipe): nothing to answer, not a protocol error.
            reportClosed(code: WebSocketCloseCode.abnormal, reason: "")
            context.close(promise: nil)
        } else if let error = error as? NIOWebSocketError, error == .invalidFrameLength {
            fail(WebSocketCloseCode.tooBig, "frame larger than \(settings.maxMessageSize) bytes")
        } else {
            fail(WebSocketCloseCode.protocolError, "\(error)")
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, queuedBytes == 0, let connection { environment.delegate.webSocketDrained(connection) }
        context.fireChannelWritabilityChanged()
    }

    private func receive(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        guard var current = message, !closeSent else { return }
        message = nil
        var payload = frame.unmaskedData
        if current.compressed, let deflate {
            let start = current.data.writerIndex
            guard deflate.inflate(payload, final: frame.fin, into: &current.data, limit: settings.maxMessageSize) else {
                return current.data.readableBytes > settings.maxMessageSize
                    ? fail(WebSocketCloseCode.tooBig, "message larger than \(settings.maxMessageSize) bytes")
                    : fail(WebSocketCloseCode.invalidData, "corrupt compressed message")
            }
            payload = current.data.getSlice(at: start, length: current.data.writerIndex - start) ?? ByteBuffer()
        } else if current.data.readableBytes + payload.readableBytes > settings.maxMessageSize {
            return fail(WebSocketCloseCode.tooBig, "message larger than \(settings.maxMessageSize) bytes")
        }
        if current.isText && settings.validateUTF8 {
            let valid = payload.withUnsafeReadableBytes { current.utf8.feed($0) }
            guard valid, !frame.fin || current.utf8.isComplete else {
                return fail(WebSocketCloseCode.invalidData, "text message is not valid UTF-8")
            }
        }
        if settings.fragmentMode != .buffer, let connection, !(frame.fin && frame.opcode != .continuation) {
            environment.delegate.webSocketFragment(connection, payload, isText: current.isText, isFinal: frame.fin)
        }
        if frame.fin {
            guard settings.fragmentMode != .fragments || frame.opcode != .continuation else { return }
            let whole: ByteBuffer
            if current.compressed {
                whole = current.data
            } else {
                whole = current.data.readableBytes == 0 ? payload : appended(&current.data, payload)
            }
            if let connection { environment.delegate.webSocketMessage(connection, whole, isText: current.isText) }
        } else {
            if !current.compressed && settings.fragmentMode != .fragments { _ = appended(&current.data, payload) }
            message = current
        }
    }

    private func appended(_ buffer: inout ByteBuffer, _ payload: ByteBuffer) -> ByteBuffer {
        var payload = payload
        buffer.writeBuffer(&payload)
        return buffer
    }

    private func receiveClose(_ frame: WebSocketFrame) {
        var payload = frame.unmaskedData
        var code = WebSocketCloseCode.noStatus
        var reason = ""
        if payload.readableBytes == 1 { return fail(WebSocketCloseCode.protocolError, "close frame with a 1-byte payload") }
        if let received = payload.readInteger(as: UInt16.self) {
            guard WebSocketCloseCode.isValidReceived(received) else {
                return fail(WebSocketCloseCode.protocolError, "invalid close code \(received)")
            }
            code = received
            var validator = UTF8Validator()
            let valid = payload.withUnsafeReadableBytes { validator.feed($0) } && validator.isComplete
            guard valid else { return fail(WebSocketCloseCode.invalidData, "close reason is not valid UTF-8") }
            reason = payload.readString(length: payload.readableBytes) ?? ""
        }
        if !closeSent {
            sendClose(code: code == WebSocketCloseCode.noStatus ? nil : code, reason: "")
        }
        reportClosed(code: code, reason: reason)
        closeTCP()
    }

    /// Sends a data or control frame (server frames are not masked).
    func send(opcode: WebSocketOpcode, _ data: ByteBuffer) {
        guard let context, !closeSent, context.channel.isActive else { return }
        let size = data.readableBytes
        if opcode == .text || opcode == .binary {
            guard queuedBytes + size <= settings.sendQueueLimit else {
                let dropping = settings.sendQueuePolicy == .drop
                environment.logger.warning(
                    dropping ? "websocket send queue full, message dropped" : "websocket send queue full, closing with 1008",
                    metadata: ["peer": "\(request.connection.remoteIP):\(request.connection.remotePort)", "queued": "\(queuedBytes)"])
                if dropping { return }
                return close(code: WebSocketCloseCode.policyViolation, reason: "client does not read fast enough")
            }
        }
        var payload = data
        var compressed = false
        if let deflate, opcode == .text || opcode == .binary, size >= settings.compressionThreshold {
            payload = deflate.compress(data, allocator: context.channel.allocator)
            compressed = true
        }
        queuedBytes += size
        let promise = context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let handler = bound.value
            handler.queuedBytes -= size
            if handler.queuedBytes == 0, let connection = handler.connection, !handler.closeSent,
                handler.context?.channel.isWritable == true
            {
                handler.environment.delegate.webSocketDrained(connection)
            }
        }
        context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, rsv1: compressed, opcode: opcode, data: payload)), promise: promise)
    }

    /// Starts the closing handshake; the TCP connection ends when the client answers, or
    /// after a grace period if it does not.
    func close(code: UInt16, reason: String) {
        guard let context, !closeSent else { return }
        sendClose(code: code, reason: reason)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
    }

    private func sendClose(code: UInt16?, reason: String) {
        guard let context else { return }
        closeSent = true
        message = nil
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        if let code {
            payload.writeInteger(code)
            payload.writeString(reason)
        }
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: nil)
    }

    /// A protocol violation: close with `code`, tell the delegate, drop the connection.
    private func fail(_ code: UInt16, _ message: String) {
        guard !closeSent else { return closeTCP() }
        environment.logger.warning(
            "websocket protocol error",
            metadata: ["peer": "\(request.connection.remoteIP):\(request.connection.remotePort)", "error": "\(message) (\(code))"])
        environment.delegate.protocolError(request.connection, message: "\(message) (\(code))")
        sendClose(code: code, reason: "")
        reportClosed(code: code, reason: message)
        closeTCP()
    }

    private func closeTCP() {
        guard let context else { return }
        let channel = context.channel
        context.flush()
        channel.eventLoop.execute { channel.close(promise: nil) }
    }

    private func reportClosed(code: UInt16, reason: String) {
        heartbeat?.cancel()
        heartbeat = nil
        guard !closeReported, let connection else { return }
        closeReported = true
        environment.webSockets.remove(connection)
        connection.detach()
        environment.delegate.webSocketClosed(connection, code: code, reason: reason)
    }
}
