import NIOSSL
import XCTest

@testable import MoonwireCore

final class PeerCertificateTests: XCTestCase {
    // Made with the openssl CLI (3.0) ahead of time:
    //   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
    //       -days 3650 -subj "/C=US/O=Moon/CN=Moon Test CA" -set_serial 0x01
    //   openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key \
    //       -out client.csr -subj "/O=Moon/CN=good-client"
    //   openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 0x8F3A00010203ABCD -days 825 \
    //       -extfile ext.cnf -out client.pem    # ext.cnf: basicConstraints, extendedKeyUsage=clientAuth (v3)
    //   openssl req -new ... -utf8 -out other.csr -subj "/C=DE/ST=Berlin/L=Mitte/O=Mondfabrik/OU=Ops/CN=Müller Client/\
    //       emailAddress=ops@moon.test/serialNumber=A-42"
    //   openssl x509 -req -in other.csr -CA ca.pem -CAkey ca.key -set_serial 0x0005 -days 30 -out other.pem  # (v1)

    private static let caPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBqDCCAU6gAwIBAgIBATAKBggqhkjOPQQDAjAzMQswCQYDVQQGEwJVUzENMAsG
        A1UECgwETW9vbjEVMBMGA1UEAwwMTW9vbiBUZXN0IENBMB4XDTI2MTIwMjE0NDE1
        MFoXDTM2MTEyOTE0NDE1MFowMzELMAkGA1UEBhMCVVMxDTALBgNVBAoMBE1vb24x
        FTATBgNVBAMMDE1vb24gVGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA
        BN6NxEvfQg6XC1f0uPjTx9WMzj8yoyS+xkZhXV0DGth4jOpZ/XiqWvQjakvMymRy
        r/N+xeAeyWtQfErR3fSw5+SjUzBRMB0GA1UdDgQWBBSWuNmCqcZB5W7YhBkTNopP
        VJoinDAfBgNVHSMEGDAWgBSWuNmCqcZB5W7YhBkTNopPVJoinDAPBgNVHRMBAf8E
        BTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDF0cIESSXZ96eEZCMgilJMvYZuCRj3
        Wv9ZCUSTHehA6AIgVPXSwm5yyxQfnoZQLPqLX2+mYm3CmwHqUQ6/8IunfHk=
        -----END CERTIFICATE-----

        """

    /// Serial 8F3A00010203ABCD, notBefore Dec  2 14:41:54 2026 GMT, notAfter Mar  6 14:41:54 2029 GMT.
    private static let clientPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBsTCCAVegAwIBAgIJAI86AAECA6vNMAoGCCqGSM49BAMCMDMxCzAJBgNVBAYT
        AlVTMQ0wCwYDVQQKDARNb29uMRUwEwYDVQQDDAxNb29uIFRlc3QgQ0EwHhcNMjYx
        MjAyMTQ0MTU0WhcNMjkwMzA2MTQ0MTU0WjAlMQ0wCwYDVQQKDARNb29uMRQwEgYD
        VQQDDAtnb29kLWNsaWVudDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPomzudT
        PhmtpzIqq8qILUD3jvitNS/ITKLnmFAIFBirJu+frxvgAaXUIoE/cbdBFc9/+j2H
        fvgUkcG1KchZoUmjYjBgMAkGA1UdEwQCMAAwEwYDVR0lBAwwCgYIKwYBBQUHAwIw
        HQYDVR0OBBYEFOXFHiDGWk1rosCLSNNmFqjoNDouMB8GA1UdIwQYMBaAFJa42YKp
        xkHlbtiEGRM2ik9UmiKcMAoGCCqGSM49BAMCA0gAMEUCIQCNEC+7bPcVpPEk6FRh
        8iP/cQEY6T9xO6plitqRyeu3NAIgFVcfSJBc17F9udS3IGT4rG0MUZM+4wveuEcE
        nIZduY4=
        -----END CERTIFICATE-----

        """

    /// A version 1 certificate with every named attribute, a UTF-8 CN, an IA5String email and an
    /// attribute without a short name (serialNumber, 2.5.4.5); serial 05.
    private static let otherPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBszCCAVkCAQUwCgYIKoZIzj0EAwIwMzELMAkGA1UEBhMCVVMxDTALBgNVBAoM
        BE1vb24xFTATBgNVBAMMDE1vb24gVGVzdCBDQTAeFw0yNjEyMDIxNDQxNTBaFw0y
        NzAxMDExNDQxNTBaMIGXMQswCQYDVQQGEwJERTEPMA0GA1UECAwGQmVybGluMQ4w
        DAYDVQQHDAVNaXR0ZTETMBEGA1UECgwKTW9uZGZhYnJpazEMMAoGA1UECwwDT3Bz
        MRcwFQYDVQQDDA5Nw7xsbGVyIENsaWVudDEcMBoGCSqGSIb3DQEJARYNb3BzQG1v
        b24udGVzdDENMAsGA1UEBRMEQS00MjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA
        BLVbbhcwvvj0csQWmMkzPlIlPBylEfmf5+ycHQKBAhPa0JnOMiRIHsTuDpY4I+q7
        gsQIRAyu5d2PDKW/C6O2JQ4wCgYIKoZIzj0EAwIDSAAwRQIhAPUk7r00bLKzde2K
        dJwGcPdp5bor72ha4+pSzE0vIRJoAiAoY6nhsuUADThJNW4ZOCY895/pouNsFffz
        Ehnjq2E6Iw==
        -----END CERTIFICATE-----

        """

    private func load(_ pem: String) throws -> NIOSSLCertificate {
        try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)
    }

    func testClientCertificateNames() throws {
        let peer = PeerCertificate(try load(Self.clientPEM))
        XCTAssertEqual(peer.subject, "O=Moon, CN=good-client")
        XCTAssertEqual(peer.issuer, "C=US, O=Moon, CN=Moon Test CA")
    }

    func testSelfSignedCAHasIssuerEqualToSubject() throws {
        let peer = PeerCertificate(try load(Self.caPEM))
        XCTAssertEqual(peer.subject, "C=US, O=Moon, CN=Moon Test CA")
        XCTAssertEqual(peer.issuer, peer.subject)
        XCTAssertEqual(peer.serial, "01")
        XCTAssertEqual(peer.notBefore, 1_796_222_510)  // Dec  2 14:41:50 2026 GMT
        XCTAssertEqual(peer.notAfter, 2_111_582_510)  // Nov 29 14:41:50 2036 GMT
    }

    func testSerialIsLowercaseHexWithEveryByteTwoDigits() throws {
        // The DER integer is 00 8F 3A 00 01 02 03 AB CD: the sign byte is not part of the number.
        XCTAssertEqual(PeerCertificate(try load(Self.clientPEM)).serial, "8f3a00010203abcd")
        XCTAssertEqual(PeerCertificate(try load(Self.otherPEM)).serial, "05")
    }

    func testValidityInUnixSeconds() throws {
        let peer = PeerCertificate(try load(Self.clientPEM))
        XCTAssertEqual(peer.notBefore, 1_796_222_514)
        XCTAssertEqual(peer.notAfter, 1_867_502_514)
        XCTAssertEqual(peer.notAfter - peer.notBefore, 825 * 86400)
    }

    func testVersionOneCertificateWithManyAttributes() throws {
        let peer = PeerCertificate(try load(Self.otherPEM))
        XCTAssertEqual(peer.issuer, "C=US, O=Moon, CN=Moon Test CA")
        XCTAssertTrue(
            peer.subject.hasPrefix("C=DE, ST=Berlin, L=Mitte, O=Mondfabrik, OU=Ops, CN=Müller Client, emailAddress=ops@moon.test, "),
            peer.subject)
        XCTAssertEqual(peer.notBefore, 1_796_222_510)
        XCTAssertEqual(peer.notAfter, 1_796_222_510 + 30 * 86400)
    }

    func testAttributeWithoutAShortNameIsWrittenAsADottedOID() throws {
        // 2.5.4.5 (serialNumber) is not in the table; its OID should read "2.5.4.5" (RFC 4514
        // section 2.3), not the raw content bytes 0x55 0x04 0x05 as "85.4.5".
        let subject = PeerCertificate(try load(Self.otherPEM)).subject
        let last = subject.split(separator: ", ").last.map(String.init) ?? ""
        XCTAssertTrue(["2.5.4.5=A-42", "serialNumber=A-42"].contains(last), "got \(last) in \(subject)")
    }

    func testPEMRoundTrips() throws {
        for pem in [Self.caPEM, Self.clientPEM, Self.otherPEM] {
            let original = try load(pem)
            let peer = PeerCertificate(original)
            XCTAssertTrue(peer.pem.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
            XCTAssertTrue(peer.pem.hasSuffix("\n-----END CERTIFICATE-----\n"))
            let parsed = try load(peer.pem)
            XCTAssertEqual(parsed, original)
            XCTAssertEqual(try parsed.toDERBytes(), try original.toDERBytes())
            XCTAssertEqual(PeerCertificate(parsed).subject, peer.subject)
        }
    }

    func testPEMIsTheStandardTextWithNewlines() throws {
        // The same text openssl writes: 64-column base64 lines ended by "\n" only.
        for pem in [Self.caPEM, Self.clientPEM, Self.otherPEM] {
            let written = PeerCertificate(try load(pem)).pem
            XCTAssertFalse(written.contains("\r"), "PEM lines mix CRLF and LF: \(written.debugDescription)")
            XCTAssertEqual(written, pem)
        }
    }
}
