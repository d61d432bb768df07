// The TLS settings of an outbound connection, and the client contexts made from them. A
// context loads its trust store (the system's bundle, or a CA file) when it is made, which
// reads and parses files: once per distinct setting for the process, not once per connect,
// so an event loop pays that cost at most once.
import NIOConcurrencyHelpers
import NIOSSL

/// How an outbound connection does TLS: the same fields the HTTP client takes (`tls = {verify=,
/// ca=}`), plus the name to send and check.
public struct OutboundTLS: Sendable, Hashable {
    /// Check the peer's certificate chain and name. On by default; off only for tests and
    /// peers on a trusted network.
    public var verify = true
    /// A PEM file (or folder) of CA certificates to trust instead of the system's store.
    public var caFile: String?
    /// The name sent in SNI and checked against the certificate; nil means the host that was
    /// connected to. An IP address is checked against the certificate's IP entries and not sent.
    public var serverName: String?

    public init(verify: Bool = true, caFile: String? = nil, serverName: String? = nil) {
        self.verify = verify
        self.caFile = caFile
        self.serverName = serverName
    }

    /// The client context for these settings, made on first use and then shared.
    func context() throws -> NIOSSLContext {
        let key = ContextKey(verify: verify, caFile: caFile)
        return try Self.contexts.withLockedValue { contexts in
            if let context = contexts[key] { return context }
            var configuration = TLSConfiguration.makeClientConfiguration()
            if !verify { configuration.certificateVerification = .none }
            if let caFile { configuration.trustRoots = .file(caFile) }
            let context = try NIOSSLContext(configuration: configuration)
            contexts[key] = context
            return context
        }
    }

    /// What tells two contexts apart (the server name is per connection, not per context).
    private struct ContextKey: Hashable {
        let verify: Bool
        let caFile: String?
    }

    private static let contexts = NIOLockedValueBox<[ContextKey: NIOSSLContext]>([:])
}
