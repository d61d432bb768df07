// HTTP1HeadParser.parseField, which both the request decoder and the outbound response reader
// use: a field line's name and trimmed value, and the bytes a value may not hold (RFC 9110
// section 5.5) wherever they fall, in the part tested eight bytes at a time or in the tail.
import NIOHTTP1
import XCTest

@testable import MoonwireCore

final class HTTP1FieldLineTests: XCTestCase {
    private func parse(_ bytes: [UInt8]) throws -> (name: String, value: String) {
        try bytes.withUnsafeBytes { raw in
            let (name, value) = try HTTP1HeadParser.parseField(raw, 0..<raw.count)
            return (HTTP1HeadParser.string(raw, name), HTTP1HeadParser.string(raw, value))
        }
    }

    func testNameAndTrimmedValue() throws {
        let field = try parse(Array("X-Long: \t a value of more than eight bytes\t ".utf8))
        XCTAssertEqual(field.name, "X-Long")
        XCTAssertEqual(field.value, "a value of more than eight bytes")
        XCTAssertEqual(try parse(Array("Empty:".utf8)).value, "")
    }

    func testEveryControlByteRefusedAtEveryPosition() {
        let forbidden: [UInt8] = Array(0x00...0x08) + Array(0x0A...0x1F) + [0x7F]
        for length in [1, 7, 8, 9, 16, 23, 40] {
            for position in 0..<length {
                for byte in forbidden {
                    var value = [UInt8](repeating: UInt8(ascii: "v"), count: length)
                    value[position] = byte
                    let line = Array("X-A: ".utf8) + value + Array("z".utf8)
                    XCTAssertThrowsError(try parse(line), "byte \(byte) at \(position) of \(length)") { error in
                        XCTAssertEqual(error as? HTTPParserError, .invalidCharactersUsed)
                    }
                }
            }
        }
    }

    func testTabAndHighBytesAllowedEverywhere() throws {
        for length in [8, 17, 33] {
            for position in 0..<length {
                for byte: UInt8 in [0x09, 0x20, 0x7E, 0x80, 0xBF, 0xFF] {
                    var value = [UInt8](repeating: UInt8(ascii: "v"), count: length)
                    value[position] = byte
                    let line = Array("X-A: ".utf8) + value + Array("z".utf8)
                    XCTAssertNoThrow(try parse(line), "byte \(byte) at \(position) of \(length)")
                }
            }
        }
    }

    /// Every byte at every position of names short and long: tchar (RFC 9110 section 5.6.2) is
    /// part of the name, a colon ends it, anything else is refused.
    func testEveryByteInANameAtEveryPosition() throws {
        let tchar = Set(Array("!#$%&'*+-.^_`|~0123456789".utf8) + Array(UInt8(ascii: "A")...UInt8(ascii: "Z"))
            + Array(UInt8(ascii: "a")...UInt8(ascii: "z")))
        for length in [1, 7, 8, 9, 16, 23] {
            for position in 0..<length {
                for byte in UInt8(0)...0xFF where byte != UInt8(ascii: ":") {
                    var name = [UInt8](repeating: UInt8(ascii: "n"), count: length)
                    name[position] = byte
                    let line = name + Array(": a value of some length".utf8)
                    if tchar.contains(byte) {
                        let field = try parse(line)
                        XCTAssertEqual(Array(field.name.utf8), name, "byte \(byte) at \(position) of \(length)")
                        XCTAssertEqual(field.value, "a value of some length")
                    } else {
                        XCTAssertThrowsError(try parse(line), "byte \(byte) at \(position) of \(length)") { error in
                            XCTAssertEqual(error as? HTTPParserError, .invalidHeaderToken)
                        }
                    }
                }
            }
        }
    }

    func testTheColonEndsTheNameInEveryLane() throws {
        for length in 1...17 {
            let name = String(repeating: "a-Z9", count: 5).prefix(length)
            XCTAssertEqual(try parse(Array("\(name):v".utf8)).name, String(name))
            XCTAssertEqual(try parse(Array("\(name): a longer value".utf8)).name, String(name))
        }
        XCTAssertThrowsError(try parse(Array(": no name".utf8)))
        XCTAssertThrowsError(try parse(Array("no-colon-in-this-line".utf8)))
    }
}
