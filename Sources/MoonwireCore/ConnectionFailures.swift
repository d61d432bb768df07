// What happens to a connection whose TLS or HTTP/2 layer failed: a log line at the level the
// failure deserves, OnError where the client broke the protocol, and the close.
import NIOCore
import NIOHTTP2
import NIOSSL

/// Sits after a protocol layer's handler and ends the connection when that layer fails.
final class ConnectionFailures: ChannelInboundHandler {
    typealias InboundIn = Any

    enum Layer {
        /// Failed handshakes (wrong version, unknown CA, refused client certificate) are the
        /// client's business and scanners make many: a debug line. Other errors pass on.
        case tls
        /// NIO's HTTP/2 handler has already sent GOAWAY with the error's code: a warning and
        /// OnError for protocol errors, a debug line for the rest.
        case http2
    }

    private let layer: Layer
    private let environment: ConnectionEnvironment

    init(layer: Layer, environment: ConnectionEnvironment) {
        self.layer = layer
        self.environment = environment
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let connection = ConnectionInfo(channel: context.channel)
        let peer = "\(connection.remoteIP):\(connection.remotePort)"
        switch layer {
        case .tls:
            guard error is NIOSSLError || error is BoringSSLError else { return context.fireErrorCaught(error) }
            environment.logger.debug("TLS handshake failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
        case .http2 where error is any NIOHTTP2Error:
            environment.logger.warning("bad HTTP/2 connection", metadata: ["peer": "\(peer)", "error": "\(error)"])
            environment.delegate.protocolError(connection, message: "HTTP/2: \(error)")
        case .http2:
            environment.logger.debug("connection error", metadata: ["error": "\(error)"])
        }
        context.close(promise: nil)
    }
}
