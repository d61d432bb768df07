import Dispatch
import MoonwireCore
import XCTest

/// moonwire.crypto.equals's comparison: right for every length and mismatch position, and it
/// reads every byte whatever the matching prefix, so its time cannot tell that prefix.
final class ConstantTimeTests: XCTestCase {
    /// Bytes that count how many of them are read.
    private final class Reads { var count = 0 }
    private struct CountingBytes: Collection {
        let bytes: [UInt8]
        let reads: Reads
        var startIndex: Int { bytes.startIndex }
        var endIndex: Int { bytes.endIndex }
        func index(after index: Int) -> Int { index + 1 }
        subscript(position: Int) -> UInt8 {
            reads.count += 1
            return bytes[position]
        }
    }

    private let lengths = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 100, 255, 256, 1000, 4096]

    func testEqualsIsRightForEveryLengthAndMismatchPosition() {
        var generator = SystemRandomNumberGenerator()
        for length in lengths {
            let secret = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            XCTAssertTrue(ConstantTime.equals(secret, secret))
            XCTAssertFalse(ConstantTime.equals(secret, secret + [0]), "longer")
            if length > 0 { XCTAssertFalse(ConstantTime.equals(secret, secret.dropLast()), "shorter") }
            for position in Set([0, length / 2, length - 1]) where position >= 0 && position < length {
                for flip: UInt8 in [0x01, 0x80, 0xFF] {
                    var guess = secret
                    guess[position] ^= flip
                    XCTAssertFalse(ConstantTime.equals(secret, guess), "length \(length), byte \(position), flip \(flip)")
                }
            }
        }
    }

    func testEveryByteIsReadWhereverTheFirstDifferenceIs() {
        for length in lengths where length > 0 {
            let secret = Array(repeating: UInt8(0x5A), count: length)
            var readsPerPosition: Set<Int> = []
            // Every position for the short ones; for the long ones the edges and a few inside.
            let positions = length <= 256 ? Array(0...length) : [0, 1, length / 3, length / 2, length - 1, length]
            for position in positions {
                var guess = secret
                if position < length { guess[position] = 0xA5 }
                let a = Reads(), b = Reads()
                let equal = ConstantTime.equals(CountingBytes(bytes: secret, reads: a), CountingBytes(bytes: guess, reads: b))
                XCTAssertEqual(equal, position == length)
                XCTAssertEqual(a.count, length, "length \(length), first difference at \(position)")
                XCTAssertEqual(b.count, length, "length \(length), first difference at \(position)")
                readsPerPosition.insert(a.count + b.count)
            }
            XCTAssertEqual(readsPerPosition.count, 1, "the same work whatever the matching prefix (length \(length))")
        }
    }

    /// The structural test above is the proof; this checks the compiled code too, with a
    /// bound loose enough for a busy machine: an early exit would be about 4000 times faster on
    /// a first-byte mismatch than on a full match, the constant-time loop about the same.
    func testTimeDoesNotFollowTheMatchingPrefix() {
        let length = 4096
        let secret = Array(repeating: UInt8(7), count: length)
        var early = secret, late = secret
        early[0] = 8
        late[length - 1] = 8
        func fastest(_ guess: [UInt8]) -> UInt64 {
            var best = UInt64.max
            for _ in 0..<15 {
                let start = DispatchTime.now().uptimeNanoseconds
                var sink = false
                for _ in 0..<10 { sink = sink != ConstantTime.equals(secret, guess) }
                best = min(best, DispatchTime.now().uptimeNanoseconds - start)
                XCTAssertFalse(sink)
            }
            return max(best, 1)
        }
        var ratios: [Double] = []
        for _ in 0..<5 { ratios.append(Double(fastest(late)) / Double(fastest(early))) }
        let median = ratios.sorted()[2]
        XCTAssertLessThan(median, 8, "a mismatch in the last byte takes as long as one in the first (ratios \(ratios))")
        XCTAssertGreaterThan(median, 1.0 / 8, "ratios \(ratios)")
    }
}
