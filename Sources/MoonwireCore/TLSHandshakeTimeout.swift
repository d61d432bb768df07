// Closes a TLS connection whose handshake is not complete `limits.header_timeout` after it was
// accepted, as nginx's client_header_timeout covers its handshakes. Without it a client that
// sent a ClientHello and nothing more held its connection (and a file descriptor) for ever:
// the first-bytes timer stops once the ClientHello is in, and NIOSSL has no handshake timeout.
// The default of 10 s is that of the header timeout, the same slow-client attack one layer
// down; a handshake takes one or two round trips, so even a lossy mobile link (an initial
// retransmission timeout of 1 s, doubling) finishes well within it.
import Logging
import NIOCore

/// First on a TLS connection's pipeline from its accept; removed by the pipeline once the
/// handshake completes (ConnectionPipeline), which cancels it.
final class TLSHandshakeTimeout: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let logger: Logger
    private var timer: Scheduled<Void>?

    init(timeout: Double, logger: Logger) {
        self.timeout = .nanoseconds(Int64(timeout * 1e9))
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let logger = self.logger
        let seconds = Double(timeout.nanoseconds) / 1e9
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let peer = ConnectionInfo(channel: channel)
            logger.info(
                "TLS handshake timed out",
                metadata: ["peer": "\(peer.remoteIP):\(peer.remotePort)", "after": "\(seconds) s"])
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }
}
