import XCTest

@testable import MoonwireCore

/// The bytes a cluster keeps a session's data in: every kind of value comes back as it went in,
/// and damaged or foreign bytes decode to nil, never to another value.
final class SharedValueCodecTests: XCTestCase {
    private let sample = SharedValue.table([
        .string(Array("name".utf8)): .string([0xFF, 0x00, 0x41]),
        .string(Array("count".utf8)): .integer(-42),
        .string(Array("ratio".utf8)): .number(0.5),
        .string(Array("ok".utf8)): .boolean(true),
        .integer(1): .table([.integer(7): .boolean(false)]),
        .string([]): .string([]),
    ])

    func testEveryKindOfValueComesBackAsItWentIn() {
        for value in [sample, .table([:]), .string(Array("plain".utf8)), .integer(.min), .integer(.max), .number(-0.0)] {
            XCTAssertEqual(SharedValueCodec.decode(SharedValueCodec.encode(value)), value)
        }
    }

    func testAnIntegerAndAFloatOfTheSameValueStayApart() {
        XCTAssertEqual(SharedValueCodec.decode(SharedValueCodec.encode(.number(3))), .number(3))
        XCTAssertEqual(SharedValueCodec.decode(SharedValueCodec.encode(.integer(3))), .integer(3))
    }

    func testDamagedOrForeignBytesDecodeToNil() {
        let bytes = SharedValueCodec.encode(sample)
        for cut in 0..<bytes.count { XCTAssertNil(SharedValueCodec.decode(Array(bytes[..<cut])), "cut at \(cut)") }
        XCTAssertNil(SharedValueCodec.decode(bytes + [0]), "trailing bytes")
        XCTAssertNil(SharedValueCodec.decode([2] + bytes.dropFirst()), "another version")
        XCTAssertNil(SharedValueCodec.decode(Array("{\"json\": true}".utf8)))
        // A table that claims 2^60 fields in a few bytes is refused before anything is reserved.
        XCTAssertNil(SharedValueCodec.decode([1, 5, 0x10, 0, 0, 0, 0, 0, 0, 0]))
    }

    func testNestingBeyondTheCapIsRefused() {
        var deep = SharedValue.boolean(true)
        for _ in 0...SharedValueCodec.maximumDepth { deep = .table([.integer(1): deep]) }
        XCTAssertNil(SharedValueCodec.decode(SharedValueCodec.encode(deep)))
    }
}
