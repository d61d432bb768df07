// Holds a new connection's first bytes until they tell which protocol it speaks (TLS with
// which ALPN offer, the HTTP/2 preface, HTTP/1.1, or none the server knows: a raw connection,
// see RawProtocolSniffer), then installs that protocol's handlers, hands them the bytes and
// steps out of the pipeline.
import NIOCore

/// What the first bytes said.
enum FirstBytesVerdict<Choice> {
    /// Not enough bytes yet.
    case needMore
    /// Configure the connection for this.
    case decided(Choice)
}

/// Buffers until `classify` decides, then calls `configure` once. A client that sends
/// nothing within `idleTimeout`, nothing decisive within `headerTimeout` of its first byte,
/// or more than `maxBytes` undecided, is closed.
final class FirstBytesRouter<Choice>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let classify: (ByteBuffer) -> FirstBytesVerdict<Choice>
    private let configure: (Choice, ChannelHandlerContext) throws -> Void
    private let idleTimeout: TimeAmount
    private let headerTimeout: TimeAmount
    private let maxBytes: Int
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var routed = false

    init(
        idleTimeout: Double, headerTimeout: Double, maxBytes: Int, classify: @escaping (ByteBuffer) -> FirstBytesVerdict<Choice>,
        configure: @escaping (Choice, ChannelHandlerContext) throws -> Void
    ) {
        self.idleTimeout = .nanoseconds(Int64(idleTimeout * 1e9))
        self.headerTimeout = .nanoseconds(Int64(headerTimeout * 1e9))
        self.maxBytes = maxBytes
        self.classify = classify
        self.configure = configure
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(idleTimeout, context: context)
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !routed else { return context.fireChannelRead(data) }
        var chunk = unwrapInboundIn(data)
        if buffered == nil {
            buffered = chunk
            arm(headerTimeout, context: context)
        } else {
            buffered!.writeBuffer(&chunk)
        }
        let bytes = buffered!
        switch classify(bytes) {
        case .needMore:
            if bytes.readableBytes > maxBytes { context.close(promise: nil) }
        case .decided(let choice):
            routed = true
            buffered = nil
            do {
                try configure(choice, context)
            } catch {
                context.fireErrorCaught(error)
                context.close(promise: nil)
                return
            }
            context.fireChannelRead(wrapInboundOut(bytes))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
