import Foundation
import XCTest

@testable import MoonwireCore

/// The API key store: keys kept as SHA-256 digests, info by key, removal, and the digest
/// comparison that looks at every byte.
final class APIKeyStoreTests: XCTestCase {
    private let info = SharedValue.table([.string(Array("name".utf8)): .string(Array("alice".utf8))])

    func testAddCheckRemove() {
        let store = APIKeyStore()
        XCTAssertNil(store.check(Array("k1".utf8)))
        store.add(Array("k1".utf8), info: info)
        XCTAssertEqual(store.check(Array("k1".utf8)), info)
        XCTAssertNil(store.check(Array("k2".utf8)))
        XCTAssertNil(store.check(Array("k1 ".utf8)))
        XCTAssertNil(store.check(Array("K1".utf8)))
        store.add(Array("k1".utf8), info: .table([:]))
        XCTAssertEqual(store.check(Array("k1".utf8)), .table([:]), "adding again replaces the info")
        XCTAssertTrue(store.remove(Array("k1".utf8)))
        XCTAssertFalse(store.remove(Array("k1".utf8)))
        XCTAssertNil(store.check(Array("k1".utf8)))
    }

    func testBinaryAndLongKeys() {
        let store = APIKeyStore()
        let binary: [UInt8] = [0, 255, 0, 1]
        let long = [UInt8](repeating: 0x61, count: 100_000)
        store.add(binary, info: .boolean(true))
        store.add(long, info: .integer(2))
        XCTAssertEqual(store.check(binary), .boolean(true))
        XCTAssertEqual(store.check(long), .integer(2))
        XCTAssertNil(store.check(long.dropLast()))
        XCTAssertNil(store.check([0, 255, 0]))
    }

    /// The digest is SHA-256 of the key (FIPS 180-2's "abc" vector): what the store keeps says
    /// nothing of the key itself.
    func testTheDigestIsSHA256() {
        let abc: [UInt8] = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
            0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
        ]
        XCTAssertEqual(APIKeyDigest(of: Array("abc".utf8)), APIKeyDigest(digest: abc))
        XCTAssertNotEqual(APIKeyDigest(of: Array("abd".utf8)), APIKeyDigest(digest: abc))
    }

    /// Digests that differ in any one byte are unequal: equality reads every word before it
    /// answers (no early exit), so a difference in the first byte and one in the last are
    /// found the same way.
    func testEqualityLooksAtEveryByte() {
        let zero = [UInt8](repeating: 0, count: 32)
        for index in 0..<32 {
            for bit in 0..<8 {
                var other = zero
                other[index] = 1 << bit
                XCTAssertNotEqual(APIKeyDigest(digest: zero), APIKeyDigest(digest: other), "byte \(index) bit \(bit)")
            }
        }
        XCTAssertEqual(APIKeyDigest(digest: zero), APIKeyDigest(digest: [UInt8](repeating: 0, count: 32)))
        var distinct: Set<APIKeyDigest> = []
        for index in 0..<200 { distinct.insert(APIKeyDigest(of: Array("key \(index)".utf8))) }
        XCTAssertEqual(distinct.count, 200)
    }

    func testSharedAcrossThreads() {
        let store = APIKeyStore()
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<500 {
                let key = Array("t\(thread)-\(index)".utf8)
                store.add(key, info: .integer(Int64(index)))
                XCTAssertEqual(store.check(key), .integer(Int64(index)))
            }
        }
        XCTAssertEqual(store.check(Array("t7-499".utf8)), .integer(499))
    }

    /// Redis names a cluster's keys by this text: it must be the SHA-256 of the key as every
    /// tool prints it (FIPS 180-2's test vector), whatever the host's byte order.
    func testTheHexadecimalDigestIsTheStandardOne() {
        XCTAssertEqual(
            APIKeyDigest(of: Array("abc".utf8)).hexadecimal,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(APIKeyDigest(digest: [UInt8](repeating: 0, count: 31) + [1]).hexadecimal, String(repeating: "0", count: 63) + "1")
    }
}
