// What happens to a connection whose TLS or HTTP/2 layer failed: a log line at the level the
// failure deserves, OnError where the client broke the protocol, and the close.
import Logging
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

    /// The log line of a malformed HTTP/2 request, which resets that stream alone; the
    /// nghttp2 engine writes it too (HTTP2SessionConnection), so one search finds both.
    static let malformedRequestLine: Logger.Message = "bad HTTP/2 request"

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
        case .http2 where Self.isMalformedRequest(error):
            environment.logger.warning(Self.malformedRequestLine, metadata: ["peer": "\(peer)", "error": "\(error)"])
            environment.delegate.protocolError(connection, message: "HTTP/2: \(error)")
            return
        case .http2 where error is any NIOHTTP2Error:
            environment.logger.warning("bad HTTP/2 connection", metadata: ["peer": "\(peer)", "error": "\(error)"])
            environment.delegate.protocolError(connection, message: "HTTP/2: \(error)")
        case .http2:
            environment.logger.debug("connection error", metadata: ["error": "\(error)"])
        }
        context.close(promise: nil)
    }

    /// A request NIO found malformed (RFC 9113 section 8.1.1: its header block, `:protocol`
    /// outside an extended CONNECT (RFC 8441 section 4), or content that contradicts its
    /// `content-length`): a stream error, which NIO answered by resetting that stream
    /// (PROTOCOL_ERROR). NIO checks header blocks in its stream state machine
    /// only, so these errors never end a connection, and the other streams go on.
    private static func isMalformedRequest(_ error: Error) -> Bool {
        error is NIOHTTP2Errors.InvalidPseudoHeaders || error is NIOHTTP2Errors.PseudoHeaderAfterRegularHeader
            || error is NIOHTTP2Errors.DuplicatePseudoHeader || error is NIOHTTP2Errors.UnknownPseudoHeader
            || error is NIOHTTP2Errors.UnsupportedPseudoHeader || error is NIOHTTP2Errors.EmptyPathHeader
            || error is NIOHTTP2Errors.ForbiddenHeaderField || error is NIOHTTP2Errors.InvalidHTTP2HeaderFieldName
            || error is NIOHTTP2Errors.InvalidPseudoHeaderValue || error is NIOHTTP2Errors.ContentLengthViolated
    }
}
