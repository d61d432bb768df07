// The Authorization request field (RFC 9110 section 11.6.2) split into its scheme and
// credentials, and the Basic scheme's user and password (RFC 7617). Pure functions of the
// field's text, so that the server's authentication stage and its tests share one parser.
// Base64 is Foundation's strict decoder (no whitespace, padding required), as the RFC's
// grammar asks; what we add is only the splitting and the checks RFC 7617 makes on the result.
import Foundation

/// An Authorization field: `Basic dXNlcjpwYXNz`, `Bearer eyJ...`, or any other scheme.
public struct HTTPAuthorization: Sendable, Equatable {
    /// The scheme as the client wrote it (schemes compare case-insensitively: see `isBasic`).
    public var scheme: String
    /// Everything after the scheme and its spaces, without trailing whitespace; may be empty.
    public var credentials: String

    /// Splits a field's value; nil when it does not start with a scheme (a token).
    public init?(_ value: String) {
        let bytes = value.utf8
        let start = bytes.firstIndex { !Self.isSpace($0) } ?? bytes.endIndex
        let schemeEnd = bytes[start...].firstIndex(where: Self.isSpace) ?? bytes.endIndex
        guard start < schemeEnd, bytes[start..<schemeEnd].allSatisfy(HTTPToken.isTokenByte) else { return nil }
        let credentialsStart = bytes[schemeEnd...].firstIndex { !Self.isSpace($0) } ?? bytes.endIndex
        let credentialsEnd = bytes[credentialsStart...].lastIndex { !Self.isSpace($0) }.map { bytes.index(after: $0) }
        scheme = String(value[start..<schemeEnd])
        credentials = credentialsEnd.map { String(value[credentialsStart..<$0]) } ?? ""
    }

    /// Whether the scheme is Basic, in any case.
    public var isBasic: Bool {
        scheme.utf8.count == 5 && scheme.lowercased() == "basic"
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }
}

/// The user and password of Basic credentials.
public struct BasicCredentials: Sendable, Equatable {
    public var user: String
    /// Everything after the user's colon: a password may itself hold colons.
    public var password: String

    /// The longest base64 text taken, in bytes. Longer credentials are refused before they are
    /// decoded, so the scripts never get megabytes as a password (the header size limit allows
    /// 64 KiB).
    public static let maximumLength = 8192

    /// Decodes `base64(user ":" password)`; nil when it is not base64, too long, has no colon,
    /// is not UTF-8 (the charset the server's challenge names), or holds control characters,
    /// which RFC 7617 section 2 forbids in both parts.
    public init?(base64 credentials: String) {
        guard !credentials.isEmpty, credentials.utf8.count <= Self.maximumLength,
            let data = Data(base64Encoded: credentials)
        else { return nil }
        let bytes = [UInt8](data)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")),
            !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }),
            let user = String(validating: bytes[..<colon], as: UTF8.self),
            let password = String(validating: bytes[(colon + 1)...], as: UTF8.self)
        else { return nil }
        self.user = user
        self.password = password
    }

    /// The Basic credentials of an Authorization field's value; nil for another scheme or
    /// malformed credentials.
    public init?(authorization value: String) {
        guard let authorization = HTTPAuthorization(value), authorization.isBasic else { return nil }
        self.init(base64: authorization.credentials)
    }
}
