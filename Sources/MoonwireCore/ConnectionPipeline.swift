// What a newly accepted connection becomes. On a TLS listener: the ClientHello's ALPN offer
// goes to the delegate, then TLS, then HTTP/2 or HTTP/1.1 as ALPN decided. On a plain
// listener: HTTP/2 when the first bytes are its preface (prior knowledge), a raw connection
// when they are neither HTTP nor TLS and the delegate takes those, else HTTP/1.1 (which may
// still upgrade to h2c or WebSocket). Over TLS, raw connections are told from HTTP/1.1 by the
// first decrypted bytes.
import NIOCore
import NIOSSL
import NIOTLS

enum ConnectionPipeline {
    static func configure(_ channel: Channel, tls: TLSListenerContexts?, environment: ConnectionEnvironment) throws {
        let pipeline = channel.pipeline.syncOperations
        let limits = environment.limits
        if let tls {
            let handshakeTimeout = TLSHandshakeTimeout(timeout: limits.headerTimeout, logger: environment.logger)
            try pipeline.addHandler(handshakeTimeout)
            try pipeline.addHandler(
                FirstBytesRouter(
                    idleTimeout: limits.keepAliveTimeout, headerTimeout: limits.headerTimeout, maxBytes: 16 * 1024 + 5, classify: TLSClientHello.offeredProtocols,
                    configure: { offered, _ in
                        let choice =
                            offered.isEmpty
                            ? nil
                            : environment.delegate.selectApplicationProtocol(ConnectionInfo(channel: channel), offered: offered)
                        try addTLS(channel, context: tls.context(choosing: choice.flatMap { offered.contains($0) ? $0 : nil }),
                            settings: tls.settings, handshakeTimeout: handshakeTimeout, environment: environment)
                    }))
        } else if environment.http2.enabled || environment.delegate.takesUnknownProtocols {
            try addRouter(channel, environment: environment, scheme: "http")
        } else {
            try HTTP1Pipeline.configure(pipeline, environment: environment, scheme: "http")
        }
    }

    /// Routes by the first bytes (on a TLS connection: the first decrypted bytes): HTTP/2 by its
    /// preface when `scheme` is "http" and HTTP/2 is on, a raw connection when the delegate
    /// takes unknown protocols, HTTP/1.1 otherwise. Without unknown protocols only the preface
    /// is looked for, so HTTP/1.1 is decided on the first byte that departs from it.
    private static func addRouter(_ channel: Channel, environment: ConnectionEnvironment, scheme: String) throws {
        let limits = environment.limits
        let sniffs = environment.delegate.takesUnknownProtocols
        try channel.pipeline.syncOperations.addHandler(
            FirstBytesRouter(
                idleTimeout: limits.keepAliveTimeout, headerTimeout: limits.headerTimeout, maxBytes: RawProtocolSniffer.maxBytes,
                classify: { sniffs ? RawProtocolSniffer.classify($0) : isPreface($0) },
                configure: { kind, _ in
                    switch kind {
                    case .http2 where scheme == "http" && environment.http2.enabled:
                        try HTTP2Pipeline.configure(channel, environment: environment, scheme: scheme)
                    case .unknown where environment.delegate.takesUnknownProtocols:
                        try RawConnection.install(on: channel, environment: environment)
                    default:
                        try HTTP1Pipeline.configure(channel.pipeline.syncOperations, environment: environment, scheme: scheme)
                    }
                }))
    }

    private static func isPreface(_ bytes: ByteBuffer) -> FirstBytesVerdict<PlainProtocol> {
        let preface = RawProtocolSniffer.preface
        let count = min(bytes.readableBytes, preface.count)
        let start = bytes.readableBytesView.startIndex
        guard bytes.readableBytesView[start..<start + count].elementsEqual(preface[..<count]) else { return .decided(.http1) }
        return count == preface.count ? .decided(.http2) : .needMore
    }

    private static func addTLS(
        _ channel: Channel, context: NIOSSLContext, settings: TLSSettings, handshakeTimeout: TLSHandshakeTimeout,
        environment: ConnectionEnvironment
    ) throws {
        let pipeline = channel.pipeline.syncOperations
        let ssl: NIOSSLServerHandler
        if settings.peerVerification == .none {
            ssl = NIOSSLServerHandler(context: context)
        } else {
            let delegate = NIOLoopBound(environment.delegate, eventLoop: channel.eventLoop)
            let gate = TLSVerificationGate()
            try pipeline.addHandler(gate)
            let boundGate = NIOLoopBound(gate, eventLoop: channel.eventLoop)
            ssl = NIOSSLServerHandler._makeSSLServerHandler(context: context) { certificate, channel in
                let answer = delegate.value.verifyPeer(ConnectionInfo(channel: channel), certificate: PeerCertificate(certificate))
                if case .later(let accepted) = answer {
                    boundGate.value.close()
                    boundGate.value.open(after: accepted)
                }
                return answer.future(on: channel.eventLoop).flatMapThrowing { accepted in
                    guard accepted else { throw NIOSSLError.handshakeFailed(.sslError([])) }
                }
            }
        }
        try pipeline.addHandler(ssl)
        try pipeline.addHandler(ConnectionFailures(layer: .tls, environment: environment))
        // Called once the handshake has completed, whatever ALPN chose.
        let negotiation = ApplicationProtocolNegotiationHandler { result, channel in
            channel.eventLoop.makeCompletedFuture {
                channel.pipeline.syncOperations.removeHandler(handshakeTimeout, promise: nil)
                if case .negotiated("h2") = result {
                    try HTTP2Pipeline.configure(channel, environment: environment, scheme: "https")
                } else if environment.delegate.takesUnknownProtocols {
                    try addRouter(channel, environment: environment, scheme: "https")
                } else {
                    try HTTP1Pipeline.configure(channel.pipeline.syncOperations, environment: environment, scheme: "https")
                }
            }
        }
        try pipeline.addHandler(negotiation)
    }
}
