// Hexadecimal: the one writer of lowercase hex digits behind ids, digests and escapes.
import XCTest

@testable import MoonwireCore

final class HexadecimalTests: XCTestCase {
    func testEveryByteIsTwoLowercaseDigits() {
        let text = Hexadecimal.string(0...255 as ClosedRange<UInt8>)
        XCTAssertEqual(text.count, 512)
        XCTAssertEqual(String(text.prefix(8)), "00010203")
        XCTAssertEqual(String(text.dropFirst(2 * 0x9F).prefix(6)), "9fa0a1")
        XCTAssertEqual(String(text.suffix(4)), "feff")
        XCTAssertEqual(text, text.lowercased())
    }

    func testAppendWritesHighNibbleFirst() {
        var out = Array("x".utf8)
        Hexadecimal.append(0x0A, to: &out)
        Hexadecimal.append(0xF1, to: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "x0af1")
        XCTAssertEqual(Hexadecimal.string([UInt8]()), "")
    }

    func testSessionIDsAre32Digits() {
        let id = SessionStore.newID()
        XCTAssertEqual(id.count, 32)
        XCTAssertTrue(id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) })
    }
}
