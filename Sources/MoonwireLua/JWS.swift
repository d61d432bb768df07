// JSON Web Signatures in compact form (RFC 7515), as JWTs (RFC 7519) carry them: the
// algorithms of RFC 7518 that moonwire.jwt offers, the keys they take, signing and checking a
// signature. The cryptography is swift-crypto's (HMAC, ECDSA over P-256/384/521, RSA PKCS#1
// v1.5 from _CryptoExtras); ours is only splitting the token into its three base64url parts.
// We use swift-crypto rather than jwt-kit because jwt-kit's key collection is an actor, so
// every check would leave the event loop and come back (a yield and a hop per request, and no
// checking where a call cannot wait), and it decodes claims into Codable types, where scripts
// need them as Lua tables. swift-crypto's calls are synchronous and take microseconds (an
// RS256 signature, the slowest, about a millisecond), like any other Lua work on the loop.
import Crypto
import Foundation
import MoonwireCore
import _CryptoExtras

/// A failure of a token or key, with the sentence scripts see.
struct JWSError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// The JWS algorithms Moonwire signs and checks. `none` is deliberately absent.
enum JWSAlgorithm: String, CaseIterable, Sendable {
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
}

/// A key as moonwire.jwt takes it: a shared secret, or a PEM public or private key.
enum JWSKey {
    case secret(SymmetricKey)
    case rsaPublic(_RSA.Signing.PublicKey)
    case rsaPrivate(_RSA.Signing.PrivateKey)
    case p256Public(P256.Signing.PublicKey), p256Private(P256.Signing.PrivateKey)
    case p384Public(P384.Signing.PublicKey), p384Private(P384.Signing.PrivateKey)
    case p521Public(P521.Signing.PublicKey), p521Private(P521.Signing.PrivateKey)

    /// A public key in PEM (`BEGIN PUBLIC KEY`): RSA of 2048 bits or more, or EC P-256/384/521.
    init(publicPEM pem: String) throws(JWSError) {
        if let key = try? _RSA.Signing.PublicKey(pemRepresentation: pem) {
            self = .rsaPublic(key)
        } else if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) {
            self = .p256Public(key)
        } else if let key = try? P384.Signing.PublicKey(pemRepresentation: pem) {
            self = .p384Public(key)
        } else if let key = try? P521.Signing.PublicKey(pemRepresentation: pem) {
            self = .p521Public(key)
        } else {
            throw JWSError("public_key is not a PEM RSA (2048 bits or more) or EC P-256/384/521 public key")
        }
    }

    /// A private key in PEM (PKCS#8, PKCS#1 for RSA, SEC 1 for EC).
    init(privatePEM pem: String) throws(JWSError) {
        if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
            self = .rsaPrivate(key)
        } else if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            self = .p256Private(key)
        } else if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
            self = .p384Private(key)
        } else if let key = try? P521.Signing.PrivateKey(pemRepresentation: pem) {
            self = .p521Private(key)
        } else {
            throw JWSError("private_key is not a PEM RSA (2048 bits or more) or EC P-256/384/521 private key")
        }
    }

    /// The algorithms this key can serve; a token of another family is refused before any
    /// cryptography runs, so a public key can never be taken for an HMAC secret.
    var algorithms: [JWSAlgorithm] {
        switch self {
        case .secret: [.hs256, .hs384, .hs512]
        case .rsaPublic, .rsaPrivate: [.rs256, .rs384, .rs512]
        case .p256Public, .p256Private: [.es256]
        case .p384Public, .p384Private: [.es384]
        case .p521Public, .p521Private: [.es512]
        }
    }

    /// The algorithm used when the caller names none: the first the key serves.
    var defaultAlgorithm: JWSAlgorithm { algorithms[0] }
}

/// Signing and checking compact JWS.
enum JWS {
    /// The parts of a compact token: the decoded header and payload, the signed text, the
    /// decoded signature.
    struct Compact {
        var header: [UInt8]
        var payload: [UInt8]
        var signingInput: ArraySlice<UInt8>
        var signature: [UInt8]
    }

    /// Splits `token` into its three parts; a token that is not three base64url parts is malformed.
    static func parse(_ token: some Collection<UInt8>) throws(JWSError) -> Compact {
        let bytes = Array(token)
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw JWSError("malformed token: expected 3 parts separated by dots, got \(parts.count)") }
        guard let header = Base64.decode(parts[0], urlSafe: true), let payload = Base64.decode(parts[1], urlSafe: true),
            let signature = Base64.decode(parts[2], urlSafe: true)
        else { throw JWSError("malformed token: a part is not base64url") }
        return Compact(header: header, payload: payload, signingInput: bytes[..<parts[2].startIndex].dropLast(), signature: signature)
    }

    /// `header.payload.signature` for the given JSON header and payload.
    static func sign(header: [UInt8], payload: [UInt8], algorithm: JWSAlgorithm, key: JWSKey) throws(JWSError) -> String {
        let input = Base64.encode(header, urlSafe: true) + "." + Base64.encode(payload, urlSafe: true)
        let signature = try self.signature(Array(input.utf8), algorithm: algorithm, key: key)
        return input + "." + Base64.encode(signature, urlSafe: true)
    }

    private static func signature(_ input: [UInt8], algorithm: JWSAlgorithm, key: JWSKey) throws(JWSError) -> [UInt8] {
        do {
            switch (algorithm, key) {
            case (.hs256, .secret(let secret)): return Array(HMAC<SHA256>.authenticationCode(for: input, using: secret))
            case (.hs384, .secret(let secret)): return Array(HMAC<SHA384>.authenticationCode(for: input, using: secret))
            case (.hs512, .secret(let secret)): return Array(HMAC<SHA512>.authenticationCode(for: input, using: secret))
            case (.rs256, .rsaPrivate(let rsa)):
                return Array(try rsa.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
            case (.rs384, .rsaPrivate(let rsa)):
                return Array(try rsa.signature(for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
            case (.rs512, .rsaPrivate(let rsa)):
                return Array(try rsa.signature(for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
            case (.es256, .p256Private(let ec)): return Array(try ec.signature(for: input).rawRepresentation)
            case (.es384, .p384Private(let ec)): return Array(try ec.signature(for: input).rawRepresentation)
            case (.es512, .p521Private(let ec)): return Array(try ec.signature(for: input).rawRepresentation)
            default: throw JWSError("algorithm \(algorithm.rawValue) does not match the key")
            }
        } catch let error as JWSError {
            throw error
        } catch {
            throw JWSError("signing failed: \(error)")
        }
    }

    /// Whether `signature` is `key`'s signature of `input` under `algorithm` (false for a key
    /// of another family, or a signature of the wrong shape). HMACs compare in constant time.
    static func isValid(_ signature: [UInt8], of input: ArraySlice<UInt8>, algorithm: JWSAlgorithm, key: JWSKey) -> Bool {
        switch (algorithm, key) {
        case (.hs256, .secret(let secret)): return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        case (.hs384, .secret(let secret)): return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        case (.hs512, .secret(let secret)): return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        case (.rs256, .rsaPublic(let rsa)): return rsa.isValid(signature, of: SHA256.hash(data: input))
        case (.rs384, .rsaPublic(let rsa)): return rsa.isValid(signature, of: SHA384.hash(data: input))
        case (.rs512, .rsaPublic(let rsa)): return rsa.isValid(signature, of: SHA512.hash(data: input))
        case (.es256, .p256Public(let ec)):
            guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return ec.isValidSignature(signature, for: input)
        case (.es384, .p384Public(let ec)):
            guard let signature = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return ec.isValidSignature(signature, for: input)
        case (.es512, .p521Public(let ec)):
            guard let signature = try? P521.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return ec.isValidSignature(signature, for: input)
        default: return false
        }
    }
}

extension _RSA.Signing.PublicKey {
    /// RS256/384/512: PKCS#1 v1.5 over the digest (RFC 7518 section 3.3). swift-crypto names the
    /// padding "insecure" for encryption; for signatures it is what JWS specifies.
    fileprivate func isValid(_ signature: [UInt8], of digest: some Digest) -> Bool {
        isValidSignature(.init(rawRepresentation: signature), for: digest, padding: .insecurePKCS1v1_5)
    }
}
