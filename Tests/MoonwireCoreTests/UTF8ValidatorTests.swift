import XCTest

@testable import MoonwireCore

/// The incremental validator against Swift's own decoder, over every split point.
final class UTF8ValidatorTests: XCTestCase {
    private func validates(_ bytes: [UInt8], splitAt split: Int) -> Bool {
        var validator = UTF8Validator()
        let first = bytes[..<split].withUnsafeBytes { validator.feed($0) }
        let second = first && bytes[split...].withUnsafeBytes { validator.feed($0) }
        return second && validator.isComplete
    }

    func testAgreesWithTheStandardLibrary() {
        let samples: [[UInt8]] = [
            Array("plain ASCII text that is longer than eight bytes".utf8),
            Array("κόσμε, 世界, 😀 and ASCII around them".utf8),
            [0xED, 0xA0, 0x80],  // a surrogate
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xE0, 0x80, 0xAF],  // overlong
            [0xC0, 0xAF], [0xFF], [0x80],
            Array("12345678".utf8) + [0xCE, 0xBA] + Array("abcdefghij".utf8),
            Array("1234567".utf8) + [0xF0, 0x9F, 0x98, 0x80] + Array("12345678".utf8),
            Array("abcdefgh".utf8) + [0xE2, 0x82],  // ends inside a character
        ]
        for sample in samples {
            let expected = String(validating: sample, as: UTF8.self) != nil
            for split in 0...sample.count {
                XCTAssertEqual(validates(sample, splitAt: split), expected, "\(sample) split at \(split)")
            }
        }
    }
}
