// The sending side of WebSocketFrameHandler: messages, pings and broadcasts through the send
// queue (the state machine admits, drops or refuses each), written as bytes, flushed once per
// read or per burst, and counted off once written; and the checks that close a client whose
// queue does not move. See WebSocketFrameHandler.swift for the rest of the connection.
import Logging
import NIOCore
import NIOWebSocket

extension WebSocketFrameHandler {
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writabilityChanged(link: .pipeline(context))
        context.fireChannelWritabilityChanged()
    }

    /// The transport started or stopped taking more bytes.
    func writabilityChanged(link: WebSocketLink) {
        if link.isWritable {
            if machine.sendQueue.bytes == 0, let connection { environment.delegate.webSocketDrained(connection) }
        } else {
            startStallCheck(link: link)
        }
    }

    /// While the send queue is stuck (the reading held back, or the channel holding more than
    /// it takes), checks a few times per send_timeout that it still moves.
    private func startStallCheck(link: WebSocketLink) {
        guard stallCheck == nil, !machine.sentClose else { return }
        let tick = TimeAmount.nanoseconds(Int64(max(0.05, settings.sendTimeout / 4) * 1e9))
        let bound = NIOLoopBound(self, eventLoop: link.eventLoop)
        stallCheck = link.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            bound.value.checkStall()
        }
    }

    private func checkStall() {
        guard let link, !machine.sentClose, machine.readingPaused || !link.isWritable else {
            stallCheck?.cancel()
            stallCheck = nil
            machine.sendUnstalled()
            return
        }
        // A stream's writes complete as its flow-control window lets them go: progress shows
        // in what was written alone.
        let buffered = link.bufferedBytes(onStream: onStream)
        perform(machine.sendStallTick(now: environment.clock.now(), buffered: buffered), link: link)
    }

    /// Sends a data or control frame (server frames are not masked). A message goes after the
    /// broadcasts waiting for this connection in the loop's FanoutOutbox, which it hands over
    /// first.
    func send(opcode: WebSocketOpcode, _ data: ByteBuffer) {
        if opcode == .text || opcode == .binary, !environment.fanout.isIdle { environment.fanout.deliverWaiting(to: connection) }
        sendNow(opcode: opcode, data, flush: true)
    }

    /// Starts the closing handshake (`close`) after the broadcasts waiting for this connection.
    func closeInOrder(code: UInt16, reason: String) {
        if !environment.fanout.isIdle { environment.fanout.deliverWaiting(to: connection) }
        close(code: code, reason: reason)
    }

    /// Sends a broadcast message (`ChannelSubscriber.deliverOnLoop`).
    func deliverBroadcast(_ message: ChannelMessage, flush: Bool) {
        guard beforeAdded == nil else {
            beforeAdded?.append { $0.deliverBroadcast(message, flush: true) }
            return
        }
        sendNow(opcode: message.binary ? .binary : .text, message.payload, flush: false, batched: true)
        if flush, !parsing, let link, unflushed > 0 { flushWrites(link: link) }
    }

    /// Writes a frame through the send queue; `flush`: send what was written now (while
    /// parsing, the flush waits for the end of the read, or `flushThreshold`).
    private func sendNow(opcode: WebSocketOpcode, _ data: ByteBuffer, flush: Bool, batched: Bool = false) {
        guard let link, link.isActive else { return }
        let size = data.readableBytes
        let compressed: Bool
        let decision = machine.sendRequested(opcode, size: size)
        switch decision {
        case .discard:
            if flush, !parsing, unflushed > 0 { flushWrites(link: link) }
            return
        case .send(let compress):
            compressed = compress
            if opcode == .text || opcode == .binary { environment.metrics?.server.webSocketMessagesOut.increment() }
        case .drop:
            environment.logger.warning("websocket send queue full, message dropped", metadata: queueMetadata)
            if flush, !parsing, unflushed > 0 { flushWrites(link: link) }
            return
        case .closeForBackpressure:
            return closeSlowClient(link: link)
        }
        if machine.readingPaused { startStallCheck(link: link) }
        var payload = data
        if compressed, let deflate {
            payload = deflate.compress(data, allocator: allocator)
        }
        writeFrame(
            OutgoingWebSocketFrame(opcode: opcode, compressed: compressed, payload: payload), cost: WebSocketSendQueue.cost(ofPayload: size),
            batched: batched, link: link)
        if (flush && !parsing) || unflushed >= Self.flushThreshold { flushWrites(link: link) }
    }

    /// Writes a frame; `cost` is what it counts in the send queue (0: not counted). A frame of a
    /// broadcast (`batched`) is kept back until the next write or the flush, which writes it
    /// with the one promise that counts off every broadcast frame since the previous flush: NIO
    /// completes writes in order, so one promise and one closure per flush do what one per
    /// frame did. Other frames are counted one by one, as the read's back-pressure wants.
    func writeFrame(_ frame: OutgoingWebSocketFrame, cost: Int, batched: Bool = false, link: WebSocketLink) {
        if let previous = lastFrame.take() { write(previous, promise: batched ? nil : batchPromise(link), link: link) }
        unflushed += cost
        guard batched else {
            let promise = cost > 0 ? confirmation(cost: cost, frames: 1, link: link) : nil
            write(frame, promise: promise, link: link)
            return
        }
        lastFrame = frame
        unconfirmed.cost += cost
        unconfirmed.frames += 1
    }

    /// Writes a frame's bytes; `promise` is kept once all of them are written.
    private func write(_ frame: OutgoingWebSocketFrame, promise: EventLoopPromise<Void>?, link: WebSocketLink) {
        let (first, rest) = WebSocketFrameBytes.encode(frame, allocator: allocator)
        guard let rest else { return link.write(first, promise: promise) }
        link.write(first, promise: nil)
        link.write(rest, promise: promise)
    }

    /// The promise that counts off the broadcast frames written since the last one, if any.
    private func batchPromise(_ link: WebSocketLink) -> EventLoopPromise<Void>? {
        guard unconfirmed.frames > 0 else { return nil }
        let (cost, frames) = unconfirmed
        unconfirmed = (0, 0)
        return confirmation(cost: cost, frames: frames, link: link)
    }

    /// What counts off frames costing `cost` once written: a promise, or nil when they may go
    /// untracked. Small frames written while nothing else is queued and the channel takes more
    /// go untracked: a promise (an allocation, a closure, a callback: a tenth of an echoed
    /// message's cost) would almost always be kept at once by the flush, since the kernel takes
    /// the bytes, so they count as written once flushed (`flushWrites`). What that leaves
    /// uncounted is bounded: by `untrackedLimit` per flush, and by the channel's high watermark
    /// in all, since a channel holding that much is not writable and its frames get promises.
    private func confirmation(cost: Int, frames: Int, link: WebSocketLink) -> EventLoopPromise<Void>? {
        let total = untracked.cost + cost
        guard total <= Self.untrackedLimit, machine.sendQueue.bytes == total, link.isWritable else {
            return writtenPromise(cost: cost, frames: frames, link: link)
        }
        untracked = (total, untracked.frames + frames)
        return nil
    }

    private func writtenPromise(cost: Int, frames: Int, link: WebSocketLink) -> EventLoopPromise<Void> {
        let bound = NIOLoopBound((handler: self, link: link), eventLoop: link.eventLoop)
        let promise = link.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in
            let (handler, link) = bound.value
            handler.framesWritten(cost: cost, frames: frames, link: link)
        }
        return promise
    }

    func flushWrites(link: WebSocketLink) {
        unflushed = 0
        if let last = lastFrame.take() { write(last, promise: batchPromise(link), link: link) }
        link.flush()
        guard untracked.frames > 0 else { return }
        let (cost, frames) = untracked
        untracked = (0, 0)
        framesWritten(cost: cost, frames: frames, link: link)
    }

    /// The send queue is full: the closing handshake starts (its close frame after what is
    /// queued, for a client that is only slow), OnError hears of it on the loop's next turn,
    /// since this runs inside whatever sent the message (a script's ws:send, a broadcast).
    private func closeSlowClient(link: WebSocketLink) {
        let message = "client does not read fast enough (\(WebSocketCloseCode.policyViolation))"
        environment.logger.warning("websocket send queue full, closing with 1008", metadata: queueMetadata)
        close(code: WebSocketCloseCode.policyViolation, reason: "client does not read fast enough")
        let bound = NIOLoopBound((environment.delegate, connection.peer), eventLoop: link.eventLoop)
        link.eventLoop.execute { bound.value.0.protocolError(bound.value.1, message: message) }
    }

    /// Counts frames off the send queue once written to `link`, which the caller passes rather
    /// than this reading it from `self` (a copy of the link out of the handler costs a retain and
    /// a release per echoed message); nothing is read or reported once the handler is detached.
    private func framesWritten(cost: Int, frames: Int, link: WebSocketLink) {
        let progress = machine.framesWritten(cost: cost, frames: frames)
        guard self.link != nil else { return }
        if progress.resumeReading { resumeReading(link: link) }
        if progress.drained, let connection, link.isWritable {
            environment.delegate.webSocketDrained(connection)
        }
    }

    private var queueMetadata: Logger.Metadata {
        ["peer": "\(connection.peer.remoteIP):\(connection.peer.remotePort)", "queued": "\(machine.sendQueue.bytes)"]
    }
}
