import NIOCore
import XCTest

@testable import MoonwireCore

final class TLSClientHelloTests: XCTestCase {
    /// The first record `openssl s_client -alpn h2,http/1.1 -servername example.test` (OpenSSL
    /// 3.0) sent, captured by a socket listener: a TLS 1.3 ClientHello with SNI and ALPN.
    private static let helloWithALPN = bytes(
        fromHex: [
            "160301014b010001470303e212086ebe0eca496b12d4bf8f146c7ca0d4b19959da8198c30a8c116cde02ce20fca90a48",
            "68aa931e30b03797de526a548f123e1a76c2804b2103e90960911d39003e130213031301c02cc030009fcca9cca8ccaa",
            "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000c0",
            "00000011000f00000c6578616d706c652e74657374000b000403000102000a00160014001d0017001e00190018010001",
            "01010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a00280403050306",
            "03080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301",
            "002d00020101003300260024001d002000dafb1cb46a3fc34d510de9620ff0ce0aa776a0ef5c29cba433dae61aa72450",
        ])

    /// The same client without `-alpn`.
    private static let helloWithoutALPN = bytes(
        fromHex: [
            "16030101390100013503033840ed626e6296e95149b6c97e66dad15788a8149aae5711ae1f51b0e3180a53206f00c34c",
            "cecbf528eb801ba7d30d207de61a977128dcc1d2a890714c2d1268c7003e130213031301c02cc030009fcca9cca8ccaa",
            "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000ae",
            "00000011000f00000c6578616d706c652e74657374000b000403000102000a00160014001d0017001e00190018010001",
            "01010201030104002300000016000000170000000d002a0028040305030603080708080809080a080b08040805080604",
            "0105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d0020d4ee",
            "df51c6d4e65e2919751e715a40513fcbc4de9d55f91a94a1b4452ecd2959",
        ])

    // Offsets into `helloWithALPN` (record header included).
    private static let handshakeLengthOffset = 6
    private static let sessionIDLengthOffset = 43
    private static let cipherSuitesLengthOffset = 76
    private static let extensionsLengthOffset = 142
    private static let alpnExtensionOffset = 203  // type 16, then length 14
    private static let alpnListLengthOffset = 207  // 12
    private static let secondNameLengthOffset = 212  // 8, "http/1.1"
    private static let alpnExtensionEnd = 221

    private static func bytes(fromHex lines: [String]) -> [UInt8] {
        let hex = Array(lines.joined().utf8)
        return stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }

    /// The verdict as an optional: nil for `.needMore`.
    private func verdict(_ bytes: [UInt8]) -> [String]? {
        switch TLSClientHello.offeredProtocols(ByteBuffer(bytes: bytes)) {
        case .needMore: return nil
        case .decided(let protocols): return protocols
        }
    }

    private func isNeedMore(_ bytes: [UInt8]) -> Bool {
        if case .needMore = TLSClientHello.offeredProtocols(ByteBuffer(bytes: bytes)) { return true }
        return false
    }

    /// `hello` with its big-endian integer of `width` bytes at `offset` replaced.
    private func patched(_ hello: [UInt8], at offset: Int, width: Int, value: Int) -> [UInt8] {
        var copy = hello
        for index in 0..<width { copy[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * (width - 1 - index))) }
        return copy
    }

    func testCapturedHelloOffersH2AndHTTP11() {
        XCTAssertEqual(verdict(Self.helloWithALPN), ["h2", "http/1.1"])
    }

    func testCapturedHelloWithoutALPNOffersNothing() {
        XCTAssertEqual(verdict(Self.helloWithoutALPN), [])
    }

    func testEmptyBufferNeedsMore() {
        XCTAssertTrue(isNeedMore([]))
    }

    func testEveryPrefixOfTheRecordNeedsMore() {
        let hello = Self.helloWithALPN
        for length in 0..<hello.count {
            XCTAssertTrue(isNeedMore(Array(hello[..<length])), "prefix of \(length) bytes")
        }
        XCTAssertEqual(verdict(hello), ["h2", "http/1.1"])
    }

    func testRecordSplitInTheMiddleIsReassembledByTheCaller() {
        // The classifier sees the accumulated buffer; a buffer whose reader index is not 0
        // (a slice of a larger read) must work too.
        let hello = Self.helloWithALPN
        let middle = hello.count / 2
        var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
        buffer.moveReaderIndex(forwardBy: 2)
        buffer.writeBytes(hello[..<middle])
        guard case .needMore = TLSClientHello.offeredProtocols(buffer) else { return XCTFail("decided on half a record") }
        buffer.writeBytes(hello[middle...])
        guard case .decided(let protocols) = TLSClientHello.offeredProtocols(buffer) else { return XCTFail("needs more") }
        XCTAssertEqual(protocols, ["h2", "http/1.1"])
    }

    func testBytesAfterTheFirstRecordAreIgnored() {
        // A client may send its next record (or early data) in the same read.
        let changeCipherSpec: [UInt8] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]
        XCTAssertEqual(verdict(Self.helloWithALPN + changeCipherSpec), ["h2", "http/1.1"])
        XCTAssertEqual(verdict(Self.helloWithALPN + [0x17]), ["h2", "http/1.1"])
    }

    func testNonTLSFirstByteDecidesWithoutALPN() {
        XCTAssertEqual(verdict(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)), [])
        XCTAssertEqual(verdict(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)), [])
        // An SSLv2-style hello or an alert record is not a handshake record either.
        XCTAssertEqual(verdict([0x80, 0x2E, 0x01, 0x03, 0x01]), [])
        XCTAssertEqual(verdict([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]), [])
        // Only the record header is looked at: a non-TLS header with a huge "length" still decides.
        XCTAssertEqual(verdict([0x47, 0x45, 0xFF, 0xFF, 0xFF]), [])
    }

    func testHandshakeRecordThatIsNotAClientHelloOffersNothing() {
        var serverHello = Self.helloWithALPN
        serverHello[5] = 2
        XCTAssertEqual(verdict(serverHello), [])
    }

    func testEmptyAndTinyHandshakeRecordsOfferNothing() {
        XCTAssertEqual(verdict([0x16, 0x03, 0x01, 0x00, 0x00]), [])
        XCTAssertEqual(verdict([0x16, 0x03, 0x01, 0x00, 0x01, 0x01]), [])
        XCTAssertEqual(verdict([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xFF, 0xFF, 0xFF]), [])
    }

    func testHugeRecordLengthWaitsForTheRecord() {
        // 0xFFFF bytes announced, a few present: wait (the router's maxBytes ends this).
        XCTAssertTrue(isNeedMore([0x16, 0x03, 0x01, 0xFF, 0xFF] + Array(Self.helloWithALPN[5...])))
    }

    func testHugeInnerLengthsDoNotCrash() {
        let hello = Self.helloWithALPN
        let h = Self.self
        // The handshake length is not checked against the record (a hello split over records).
        XCTAssertEqual(verdict(patched(hello, at: h.handshakeLengthOffset, width: 3, value: 0xFF_FFFF)), ["h2", "http/1.1"])
        // An extensions length past the record is cut to the record.
        XCTAssertEqual(verdict(patched(hello, at: h.extensionsLengthOffset, width: 2, value: 0xFFFF)), ["h2", "http/1.1"])
        // Lengths that run past the record end the search.
        XCTAssertEqual(verdict(patched(hello, at: h.cipherSuitesLengthOffset, width: 2, value: 0xFFFF)), [])
        XCTAssertEqual(verdict(patched(hello, at: h.alpnExtensionOffset + 2, width: 2, value: 0xFFFF)), [])
        XCTAssertEqual(verdict(patched(hello, at: h.alpnListLengthOffset, width: 2, value: 0xFFFF)), [])
        // A protocol name running past its list ends the list: the names before it remain.
        XCTAssertEqual(verdict(patched(hello, at: h.secondNameLengthOffset, width: 1, value: 0xFF)), ["h2"])
        // A session ID length of 255 shifts every later field onto garbage.
        XCTAssertNotNil(verdict(patched(hello, at: h.sessionIDLengthOffset, width: 1, value: 0xFF)))
        // A shorter ALPN list length leaves the second name out.
        XCTAssertEqual(verdict(patched(hello, at: h.alpnListLengthOffset, width: 2, value: 3)), ["h2"])
    }

    func testRecordCutShortAtEveryLength() {
        // The record header claims only `length` bytes of the handshake: everything after is
        // not part of the first record. The answer is the full list once the ALPN extension
        // is inside the record, else nothing; never a crash, never needMore.
        let hello = Self.helloWithALPN
        for length in 0...(hello.count - 5) {
            let record = patched(Array(hello[..<(5 + length)]), at: 3, width: 2, value: length)
            let expected = 5 + length >= Self.alpnExtensionEnd ? ["h2", "http/1.1"] : []
            XCTAssertEqual(verdict(record), expected, "record of \(length) bytes")
            // With the rest of the bytes still following the short record: the same answer.
            let followed = patched(hello, at: 3, width: 2, value: length)
            XCTAssertEqual(verdict(followed), expected, "record of \(length) bytes, followed by the rest")
        }
    }

    func testHelloSplitOverTwoRecords() {
        // RFC 8446 allows a handshake message to span records; only the first record is read.
        let handshake = Array(Self.helloWithALPN[5...])
        func twoRecords(splitAt split: Int) -> [UInt8] {
            let first = Array(handshake[..<split])
            let second = Array(handshake[split...])
            return [0x16, 0x03, 0x01, UInt8(first.count >> 8), UInt8(first.count & 0xFF)] + first
                + [0x16, 0x03, 0x01, UInt8(second.count >> 8), UInt8(second.count & 0xFF)] + second
        }
        XCTAssertEqual(verdict(twoRecords(splitAt: 250)), ["h2", "http/1.1"])
        // ALPN in the second record is not seen: documented, and harmless (no ALPN then).
        XCTAssertEqual(verdict(twoRecords(splitAt: 100)), [])
    }

    func testALPNWithEmptyAndOddNames() {
        // A minimal hello built by hand: empty session ID, one suite, null compression, and an
        // ALPN extension listing "", "h2" and a non-UTF-8 name.
        var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 7, count: 32) + [0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]
        let names: [[UInt8]] = [[], Array("h2".utf8), [0xFF, 0xFE]]
        let list = names.flatMap { [UInt8($0.count)] + $0 }
        let alpn: [UInt8] = [0x00, 0x10, 0x00, UInt8(list.count + 2), 0x00, UInt8(list.count)] + list
        let padding: [UInt8] = [0x00, 0x15, 0x00, 0x02, 0x00, 0x00]
        let extensions = padding + alpn
        body += [0x00, UInt8(extensions.count)] + extensions
        let handshake: [UInt8] = [0x01, 0x00, 0x00, UInt8(body.count)] + body
        let record: [UInt8] = [0x16, 0x03, 0x01, 0x00, UInt8(handshake.count)] + handshake
        let protocols = verdict(record)
        XCTAssertEqual(protocols?.count, 3)
        XCTAssertEqual(protocols?.first, "")
        XCTAssertEqual(protocols?.dropFirst().first, "h2")
    }

    func testRandomCorruptionNeverCrashes() {
        // Deterministic xorshift; flip bytes of the handshake (not the record header).
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(truncatingIfNeeded: state & 0x7FFF_FFFF)
        }
        let hello = Self.helloWithALPN
        for _ in 0..<2000 {
            var copy = hello
            for _ in 0..<(1 + next() % 6) {
                copy[5 + next() % (copy.count - 5)] = UInt8(truncatingIfNeeded: next())
            }
            let protocols = verdict(copy)
            XCTAssertNotNil(protocols)
            XCTAssertLessThanOrEqual(protocols?.count ?? 0, hello.count)
        }
    }
}
