// The byte stream of a WebSocket on an HTTP/2 stream (RFC 8441 section 5): the payloads of the
// stream's DATA frames, both ways, are what a TCP connection carries after an upgrade, so the
// same frame handler (WebSocketFrameHandler), which writes its frames as bytes, runs above this.
// Back-pressure is the stream channel's: it is writable while the stream's flow-control window
// takes more, and a read held back leaves the client's window unopened. The channel's close
// ends the stream instead of the connection (HTTP2WebSocketStreamState has the rules).
import NIOCore
import NIOHTTP2

final class HTTP2WebSocketStream: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var state = HTTP2WebSocketStreamState()
    private var grace: Scheduled<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let endStream: Bool
        switch unwrapInboundIn(data) {
        case .data(let payload):
            if case .byteBuffer(let bytes) = payload.data, bytes.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(bytes))
            }
            endStream = payload.endStream
        case .headers(let trailers):
            endStream = trailers.endStream
        default:
            return
        }
        if endStream { perform(state.clientEndedStream(), context: context) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !state.refusesWrites else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(unwrapOutboundIn(data))))), promise: promise)
    }

    /// The WebSocket is done on our side: the stream ends, and the close completes with it.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if let promise { context.channel.closeFuture.cascade(to: promise) }
        perform(state.closeRequested(), context: context)
    }

    /// A client's RST_STREAM reaches the frame handler as the loss of its connection, not as a
    /// protocol error of the WebSocket.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.fireErrorCaught(error is NIOHTTP2Errors.StreamClosed ? ChannelError.eof : error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        grace?.cancel()
        grace = nil
        context.fireChannelInactive()
    }

    private func perform(_ action: HTTP2WebSocketStreamState.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .endStream:
            endStream(context: context)
        case .endStreamAndWait:
            endStream(context: context)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            grace = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(HTTP2WebSocketStreamState.grace * 1e9))) {
                let (handler, context) = bound.value
                handler.grace = nil
                handler.perform(handler.state.graceExpired(), context: context)
            }
        case .reset:
            context.close(promise: nil)
        }
    }

    private func endStream(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
    }
}
