// The heartbeat of a WebSocketFrameHandler: a few checks per interval, on the server's clock,
// of how long the client has been silent; a silent client is pinged unless the delegate
// (OnBeforeHeartBeat) says it handled it, and one that does not answer within the timeout is
// closed with 1001. When a ping is due and when a client timed out is WebSocketStateMachine's
// to say (WebSocketHeartbeat); see WebSocketFrameHandler.swift for the rest of the connection.
import NIOCore
import NIOWebSocket

extension WebSocketFrameHandler {
    /// Checks for silence a few times per interval; pings a silent client (unless the
    /// delegate handles it) and closes one that does not answer within the timeout.
    func startHeartbeat(link: WebSocketLink) {
        let interval = settings.heartbeatInterval
        guard interval > 0 else { return }
        let tick = TimeAmount.nanoseconds(Int64(max(0.05, min(interval, settings.heartbeatTimeout) / 4) * 1e9))
        scheduleHeartbeatCheck(after: tick, on: link.eventLoop)
    }

    /// On the server's clock, so that a test clock's advance runs the check at once.
    private func scheduleHeartbeatCheck(after tick: TimeAmount, on eventLoop: EventLoop) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        heartbeat = environment.clock.schedule(in: tick, on: eventLoop) {
            let handler = bound.value
            guard handler.heartbeat != nil else { return }
            handler.checkHeartbeat()
            if handler.heartbeat != nil { handler.scheduleHeartbeatCheck(after: tick, on: eventLoop) }
        }
    }

    private func checkHeartbeat() {
        guard let connection, !heldByDelegate, !heartbeatAsked else { return }
        let now = environment.clock.now()
        switch machine.heartbeatTick(now: now) {
        case .none:
            break
        case .timeOut:
            environment.logger.info("websocket heartbeat timeout", metadata: ["guid": "\(connection.guid)"])
            close(code: WebSocketCloseCode.goingAway, reason: "heartbeat timeout")
            closeTCP()
        case .due:
            heartbeatAsked = true
            let bound = NIOLoopBound(self, eventLoop: connection.eventLoop)
            environment.delegate.webSocketHeartbeat(connection).whenReady(fallback: false) { handled in
                bound.value.heartbeatAnswered(handled: handled)
            }
        }
    }

    private func heartbeatAnswered(handled: Bool) {
        heartbeatAsked = false
        guard connection != nil, machine.heartbeatDue(handledByDelegate: handled, now: environment.clock.now()) else { return }
        send(opcode: .ping, ByteBuffer(string: "moonwire"))
    }
}
