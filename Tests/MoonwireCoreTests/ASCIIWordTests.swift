// ASCIIWord against the byte-at-a-time rules it replaces, for every byte in every lane.
import XCTest

@testable import MoonwireCore

final class ASCIIWordTests: XCTestCase {
    private func word(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    func testANonASCIIByteInAnyLane() {
        for lane in 0..<8 {
            var input = Array("CONTENT-".utf8)
            input[lane] = 0xC3
            XCTAssertFalse(ASCIIWord.isASCII(word(input)))
        }
        XCTAssertTrue(ASCIIWord.isASCII(word(Array("Content-".utf8))))
    }

    func testControlBytesInEveryLane() {
        for lane in 0..<8 {
            for byte in UInt8(0)...0xFF {
                var input = Array("value ok".utf8)
                input[lane] = byte
                let expected = byte < 0x20 || byte == 0x7F
                XCTAssertEqual(ASCIIWord.hasControlByte(word(input)), expected, "byte \(byte) in lane \(lane)")
            }
        }
    }
}
