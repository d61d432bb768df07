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

    func testNonNameBytesInEveryLane() {
        for lane in 0..<8 {
            for byte in UInt8(0)...0xFF {
                for filler in Array("aZ09-zA-".utf8) {
                    var input = [UInt8](repeating: filler, count: 8)
                    input[lane] = byte
                    let isName = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                        || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D
                    let expected: UInt64 = isName ? 0 : 0x80 << (8 * UInt64(lane))
                    XCTAssertEqual(ASCIIWord.nonNameBytes(word(input)), expected, "byte \(byte) in lane \(lane)")
                }
            }
        }
    }

    /// Neighbouring lanes do not change each other's answer (no carry or borrow crosses).
    func testNonNameBytesOfEveryPairOfNeighbours() {
        for lane in 0..<7 {
            for first in UInt8(0)...0xFF {
                for second: UInt8 in [0x00, 0x01, 0x2C, 0x2D, 0x2E, 0x2F, 0x3A, 0x40, 0x5B, 0x60, 0x7B, 0x7F, 0x80, 0xFF] {
                    var input = Array("abcdefgh".utf8)
                    input[lane] = first
                    input[lane + 1] = second
                    let separate = ASCIIWord.nonNameBytes(word(Array(repeating: first, count: 8))) & (0x80 << (8 * UInt64(lane)))
                        | ASCIIWord.nonNameBytes(word(Array(repeating: second, count: 8))) & (0x80 << (8 * UInt64(lane + 1)))
                    XCTAssertEqual(ASCIIWord.nonNameBytes(word(input)), separate, "\(first), \(second) in lane \(lane)")
                }
            }
        }
    }
}
