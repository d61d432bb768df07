// The bytes of an upgraded connection (a WebSocket forwarded by the proxy) carried both ways
// untouched between the client and the upstream, with back-pressure at both ends: a side that
// cannot write stops the other side's reads, so neither fills the server's memory. A close on
// either side closes the other once what it sent has been written. Confined to the client's loop.
import NIOCore

/// An upstream connection that answered an upgrade with 101, waiting for its client.
public final class UpstreamTunnel {
    private let upstream: OutboundHTTP1Connection
    /// Upstream bytes that came before the client side was ready.
    private var early: [ByteBuffer] = []
    private var upstreamGone = false
    private weak var client: TunnelHandler?

    init(_ upstream: OutboundHTTP1Connection) {
        self.upstream = upstream
        upstream.holdReads()
        let leftover = upstream.takeReceived()
        if leftover.readableBytes > 0 { early.append(leftover) }
        upstream.tunnelRead = { [unowned self] bytes in
            guard let client else { return early.append(bytes) }
            client.write(bytes)
        }
        upstream.tunnelClosed = { [weak self] in
            guard let self else { return }
            upstreamGone = true
            client?.upstreamClosed()
        }
        upstream.tunnelWritable = { [weak self] in self?.client?.upstreamWritable() }
    }

    /// The handler that joins this tunnel to the client's channel (after the 101 went out).
    public func clientHandler() -> ChannelHandler {
        TunnelHandler(self)
    }

    fileprivate func attach(_ handler: TunnelHandler) {
        client = handler
        for bytes in early { handler.write(bytes) }
        early = []
        if upstreamGone { return handler.upstreamClosed() }
        upstream.resumeReads()
    }

    fileprivate func send(_ bytes: ByteBuffer) {
        upstream.write(bytes, promise: nil)
    }

    fileprivate var upstreamWritable: Bool { upstream.isWritable }

    fileprivate func holdUpstream(_ hold: Bool) {
        if hold { upstream.holdReads() } else { upstream.resumeReads() }
    }

    /// The client went away, or the tunnel was never joined: the upstream closes too.
    func close() {
        upstream.tunnelRead = nil
        upstream.tunnelClosed = nil
        upstream.close()
    }
}

/// The client's side of a tunnel: the last handler of its pipeline once the 101 is out.
private final class TunnelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tunnel: UpstreamTunnel
    private var context: ChannelHandlerContext?
    /// The upstream cannot take more: the client's reads wait.
    private var readsHeld = false
    private var readWanted = false

    init(_ tunnel: UpstreamTunnel) {
        self.tunnel = tunnel
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        tunnel.attach(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        tunnel.close()
    }

    /// Upstream bytes, to the client.
    func write(_ bytes: ByteBuffer) {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        if !context.channel.isWritable { tunnel.holdUpstream(true) }
    }

    /// The upstream closed: the client's connection closes once what came before is written.
    func upstreamClosed() {
        guard let context else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
    }

    func upstreamWritable() {
        guard readsHeld else { return }
        readsHeld = false
        if readWanted {
            readWanted = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tunnel.send(unwrapInboundIn(data))
        if !tunnel.upstreamWritable { readsHeld = true }
    }

    func read(context: ChannelHandlerContext) {
        if readsHeld {
            readWanted = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { tunnel.holdUpstream(false) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tunnel.close()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
