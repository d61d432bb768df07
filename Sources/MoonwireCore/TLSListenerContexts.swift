// The NIOSSL contexts of one TLS listener. ALPN is answered by the context from its own
// protocol list, so a script that picks a protocol (OnSSLALPNSelect) gets a context that
// offers only that one; certificates come per handshake from `TLSCertificates` (SNI, reload).
import NIOCore
import NIOSSL

/// Builds and keeps the contexts of one listener.
final class TLSListenerContexts: Sendable {
    /// Server preference: h2, then http/1.1 (only http/1.1 when HTTP/2 is off).
    let standard: NIOSSLContext
    /// A context offering exactly one protocol, by ALPN name.
    private let single: [String: NIOSSLContext]
    let settings: TLSSettings

    init(listener listenerKey: String, settings: TLSSettings, certificates: TLSCertificates, http2: Bool) throws {
        self.settings = settings
        let protocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        func make(_ offered: [String]) throws -> NIOSSLContext {
            let (chain, key) = settings.identity.sources
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
            configuration.minimumTLSVersion = settings.minimumVersion
            configuration.applicationProtocols = offered
            switch settings.peerVerification {
            case .none:
                break
            case .optional:
                configuration.certificateVerification = .optionalVerification
            case .required:
                configuration.certificateVerification = .noHostnameVerification
            }
            if settings.peerVerification != .none {
                guard let ca = settings.clientCA else {
                    throw TLSFileError(file: "(client_ca)", message: "verifying clients needs a client CA file")
                }
                configuration.trustRoots = .file(ca)
                configuration.sendCANameList = true
            }
            configuration.sslContextCallback = { values, promise in
                var override = NIOSSLContextConfigurationOverride()
                if let identity = certificates.identity(serverName: values.serverHostname, listener: listenerKey) {
                    (override.certificateChain, override.privateKey) = identity.sources
                }
                promise.succeed(override)
            }
            return try NIOSSLContext(configuration: configuration)
        }
        standard = try make(protocols)
        var single: [String: NIOSSLContext] = [:]
        for name in protocols { single[name] = try make([name]) }
        self.single = single
    }

    /// The context for a connection whose script chose `name` (nil: the server's preference).
    func context(choosing name: String?) -> NIOSSLContext {
        name.flatMap { single[$0] } ?? standard
    }
}
