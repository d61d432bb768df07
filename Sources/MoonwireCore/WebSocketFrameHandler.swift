// One WebSocket connection after the upgrade (RFC 6455): assembles messages from frames,
// enforces the protocol (masking, reserved bits, control frames, UTF-8, sizes, close codes),
// answers pings, runs the closing handshake, and reports to the delegate. NIOWebSocket does
// the framing; the rules are WebSocketStateMachine's, and this handler feeds it the channel's
// frames, errors and timer ticks and carries out what it answers: writes, delegate calls,
// timers and closes.
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
    /// The protocol's rules, and where the connection stands in them.
    private var machine: WebSocketStateMachine
    /// permessage-deflate, when the handshake agreed on it; it compresses what we send (the
    /// state machine inflates what arrives).
    private let deflate: PerMessageDeflate?
    private var heartbeat: RepeatedTask?

    init(environment: ConnectionEnvironment, request: HTTPRequest, subprotocol: String?, deflate: PerMessageDeflateParameters?) {
        self.environment = environment
        self.request = request
        self.subprotocol = subprotocol
        let deflate = deflate.flatMap(PerMessageDeflate.init)
        self.deflate = deflate
        machine = WebSocketStateMachine(settings: environment.webSocket, deflate: deflate, now: .now())
    }

    private var settings: WebSocketSettings { environment.webSocket }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        machine.allocator = context.channel.allocator
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
        guard let connection else { return }
        let now = NIODeadline.now()
        switch machine.heartbeatTick(now: now) {
        case .none:
            break
        case .timeOut:
            environment.logger.info("websocket heartbeat timeout", metadata: ["guid": "\(connection.guid)"])
            close(code: WebSocketCloseCode.goingAway, reason: "heartbeat timeout")
            closeTCP()
        case .due:
            let handled = environment.delegate.webSocketHeartbeat(connection)
            if machine.heartbeatDue(handledByDelegate: handled, now: now) {
                send(opcode: .ping, ByteBuffer(string: "moonwire"))
            }
        }
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
        perform(machine.frameReceived(unwrapInboundIn(data), now: .now()), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        perform(machine.errorCaught(error), context: context)
    }

    /// Carries out what the state machine decided; the action is consumed, so a message is
    /// handed on without a copy.
    private func perform(_ action: consuming WebSocketStateMachine.Action, context: ChannelHandlerContext) {
        switch consume action {
        case .none:
            break
        case .sendPong(let payload):
            send(opcode: .pong, payload)
        case .deliverMessage(let message, let isText):
            if let connection { environment.delegate.webSocketMessage(connection, message, isText: isText) }
        case .deliverFragment(let fragment, let isText, let isFinal):
            if let connection { environment.delegate.webSocketFragment(connection, fragment, isText: isText, isFinal: isFinal) }
            machine.fragmentDelivered()
        case .deliverFragmentAndMessage(let fragment, let message, let isText):
            guard let connection else { return }
            environment.delegate.webSocketFragment(connection, fragment, isText: isText, isFinal: true)
            environment.delegate.webSocketMessage(connection, message, isText: isText)
        case .closeReceived(let code, let reason, let reply):
            if let reply { sendClose(reply) }
            reportClosed(code: code, reason: reason)
            closeTCP()
        case .fail(let code, let message):
            fail(code, message)
        case .closeTCP:
            closeTCP()
        case .connectionLost:
            // The peer went away (reset, broken pipe): nothing to answer, not a protocol error.
            reportClosed(code: WebSocketCloseCode.abnormal, reason: "")
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, machine.queuedBytes == 0, let connection {
            environment.delegate.webSocketDrained(connection)
        }
        context.fireChannelWritabilityChanged()
    }

    /// Sends a data or control frame (server frames are not masked).
    func send(opcode: WebSocketOpcode, _ data: ByteBuffer) {
        guard let context, context.channel.isActive else { return }
        let size = data.readableBytes
        let compressed: Bool
        let decision = machine.sendRequested(opcode, size: size)
        switch decision {
        case .discard:
            return
        case .send(let compress):
            compressed = compress
        case .drop, .closeForBackpressure:
            let dropping = decision == .drop
            environment.logger.warning(
                dropping ? "websocket send queue full, message dropped" : "websocket send queue full, closing with 1008",
                metadata: [
                    "peer": "\(request.connection.remoteIP):\(request.connection.remotePort)", "queued": "\(machine.queuedBytes)",
                ])
            if dropping { return }
            return close(code: WebSocketCloseCode.policyViolation, reason: "client does not read fast enough")
        }
        var payload = data
        if compressed, let deflate {
            payload = deflate.compress(data, allocator: context.channel.allocator)
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let handler = bound.value
            if handler.machine.frameWritten(size: size), let connection = handler.connection,
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
        guard let context, !machine.sentClose else { return }
        sendClose(WebSocketStateMachine.CloseFrame(code: code, reason: reason))
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
    }

    private func sendClose(_ frame: WebSocketStateMachine.CloseFrame) {
        guard let context else { return }
        machine.closeFrameSent()
        connection?.markClosing()
        var payload = context.channel.allocator.buffer(capacity: 2 + frame.reason.utf8.count)
        if let code = frame.code {
            payload.writeInteger(code)
            payload.writeString(frame.reason)
        }
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: nil)
    }

    /// A protocol violation: close with `code`, tell the delegate, drop the connection.
    private func fail(_ code: UInt16, _ message: String) {
        connection?.markClosing()
        environment.logger.warning(
            "websocket protocol error",
            metadata: ["peer": "\(request.connection.remoteIP):\(request.connection.remotePort)", "error": "\(message) (\(code))"])
        environment.delegate.protocolError(request.connection, message: "\(message) (\(code))")
        sendClose(WebSocketStateMachine.CloseFrame(code: code, reason: ""))
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
        guard let connection, machine.reportClose() else { return }
        connection.markClosing()
        environment.webSockets.remove(connection)
        connection.detach()
        environment.delegate.webSocketClosed(connection, code: code, reason: reason)
    }
}
