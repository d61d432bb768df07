// What a TLS listener needs: its certificate and key, the lowest protocol version it accepts,
// and whether it asks clients for certificates.
import NIOSSL

/// TLS for one listener.
public struct TLSSettings: Sendable {
    /// Whether and how clients must present certificates.
    public enum PeerVerification: String, Sendable {
        /// Clients are not asked for certificates.
        case none
        /// A certificate is asked for; one that is presented must verify against the CA.
        case optional
        /// A certificate that verifies against the CA is required.
        case required
    }

    /// The listener's certificate, used when no virtual host's certificate matches the SNI name.
    public var identity: TLSIdentity
    /// The lowest TLS version accepted; 1.2 by default (RFC 9325).
    public var minimumVersion: TLSVersion = .tlsv12
    /// PEM file of the CAs client certificates must chain to.
    public var clientCA: String?
    /// Client certificates: none by default.
    public var peerVerification = PeerVerification.none

    /// Creates TLS settings with the defaults.
    public init(identity: TLSIdentity) {
        self.identity = identity
    }
}

/// A certificate chain and its private key, read from PEM files.
public struct TLSIdentity: Sendable {
    /// The leaf certificate first, then intermediates.
    public let chain: [NIOSSLCertificate]
    /// The leaf certificate's private key.
    public let key: NIOSSLPrivateKey

    /// Reads the pair; throws with the file's name when either cannot be read or parsed.
    public init(certificateFile: String, keyFile: String) throws {
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw TLSFileError(file: certificateFile, message: "not a PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw TLSFileError(file: certificateFile, message: "no certificate in the file") }
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw TLSFileError(file: keyFile, message: "not a PEM private key (\(error))")
        }
    }

    /// The pair as NIOSSL takes it in a configuration or a per-handshake override.
    var sources: (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource) {
        (chain.map { .certificate($0) }, .privateKey(key))
    }
}

/// A certificate or key file that cannot be used.
public struct TLSFileError: Error, CustomStringConvertible {
    /// The file's path.
    public var file: String
    /// What is wrong with it.
    public var message: String

    public var description: String { "\(file): \(message)" }
}
