// A client certificate as scripts see it (OnSSLVerifyPeer): names as text, validity as Unix
// times, the PEM itself. NIOSSL exposes the DER; the two names are read from it here.
import FoundationEssentials
import NIOSSL

/// The readable parts of a verified client certificate.
public struct PeerCertificate: Sendable {
    /// The subject's distinguished name, "C=.., O=.., CN=.." in certificate order.
    public var subject: String
    /// The issuer's distinguished name, written the same way.
    public var issuer: String
    /// The serial number in lowercase hex.
    public var serial: String
    /// Not valid before / after, in seconds since 1970.
    public var notBefore: Int
    public var notAfter: Int
    /// The certificate in PEM.
    public var pem: String

    init(_ certificate: NIOSSLCertificate) {
        let der = (try? certificate.toDERBytes()) ?? []
        let names = DistinguishedNames(certificate: der)
        subject = names?.subject ?? ""
        issuer = names?.issuer ?? ""
        serial = Hexadecimal.string(certificate.serialNumber)
        notBefore = Int(certificate.notValidBefore)
        notAfter = Int(certificate.notValidAfter)
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        pem = "-----BEGIN CERTIFICATE-----\n\(base64)\n-----END CERTIFICATE-----\n"
    }
}

/// The issuer and subject of an X.509 certificate's DER (RFC 5280 section 4.1).
private struct DistinguishedNames {
    var issuer: String
    var subject: String

    init?(certificate der: [UInt8]) {
        var outer = DERReader(der[...])
        guard var certificate = outer.enter(tag: 0x30), var tbs = certificate.enter(tag: 0x30) else { return nil }
        if tbs.peekTag == 0xA0 { _ = tbs.next() }  // version
        guard tbs.next() != nil, tbs.next() != nil,  // serialNumber, signature
            let issuer = tbs.enter(tag: 0x30), tbs.next() != nil,  // issuer, validity
            let subject = tbs.enter(tag: 0x30)
        else { return nil }
        self.issuer = Self.text(of: issuer)
        self.subject = Self.text(of: subject)
    }

    private static let attributeNames: [[UInt8]: String] = [
        [0x55, 0x04, 0x03]: "CN", [0x55, 0x04, 0x06]: "C", [0x55, 0x04, 0x07]: "L", [0x55, 0x04, 0x08]: "ST",
        [0x55, 0x04, 0x0A]: "O", [0x55, 0x04, 0x0B]: "OU", [0x55, 0x04, 0x05]: "serialNumber",
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01]: "emailAddress",
    ]

    /// An OBJECT IDENTIFIER's content as "2.5.4.5" (X.690 section 8.19).
    private static func dotted(_ content: ArraySlice<UInt8>) -> String {
        var arcs: [UInt64] = []
        var value: UInt64 = 0
        for byte in content {
            value = value << 7 | UInt64(byte & 0x7F)
            if byte & 0x80 == 0 {
                if arcs.isEmpty {
                    let first = min(value / 40, 2)
                    arcs = [first, value - first * 40]
                } else {
                    arcs.append(value)
                }
                value = 0
            }
        }
        return arcs.map(String.init).joined(separator: ".")
    }

    private static func text(of name: DERReader) -> String {
        var name = name
        var parts: [String] = []
        while var set = name.enter(tag: 0x31) {
            while var attribute = set.enter(tag: 0x30) {
                guard let oid = attribute.next(), let value = attribute.next() else { continue }
                let key = attributeNames[Array(oid.content)] ?? dotted(oid.content)
                parts.append("\(key)=\(String(decoding: value.content, as: UTF8.self))")
            }
        }
        return parts.joined(separator: ", ")
    }
}

/// Walks DER elements (tag, definite length, content) without copying.
private struct DERReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    var peekTag: UInt8? { bytes.first }

    /// The next element's tag and content, or nil at the end or on malformed input.
    mutating func next() -> (tag: UInt8, content: ArraySlice<UInt8>)? {
        guard let tag = bytes.first, bytes.count >= 2 else { return nil }
        var index = bytes.startIndex + 1
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard count > 0, count <= 4, bytes.endIndex - index >= count else { return nil }
            length = bytes[index..<index + count].reduce(0) { $0 << 8 | Int($1) }
            index += count
        }
        guard bytes.endIndex - index >= length else { return nil }
        let content = bytes[index..<index + length]
        bytes = bytes[(index + length)...]
        return (tag, content)
    }

    /// The next element's content as a reader, if its tag is `tag`.
    mutating func enter(tag: UInt8) -> DERReader? {
        guard peekTag == tag, let element = next() else { return nil }
        return DERReader(element.content)
    }
}
