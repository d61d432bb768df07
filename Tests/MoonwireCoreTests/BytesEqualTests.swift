// bytesEqual, which compares field names (and a few values) with literals a word at a time,
// against the byte-at-a-time rule it replaces, and ProxyHeaders.kind, which decides on it which
// fields are hop-by-hop and never cross a proxy (a request-smuggling guard).
import XCTest

@testable import MoonwireCore

final class BytesEqualTests: XCTestCase {
    /// Every length a compare takes a path for: one byte, the halves of two and four, words.
    private let literals: [StaticString] = [
        "a", "te", "via", "host", "close", "expect", "upgrade", "trailer", "chunked", "forwarded", "keep-alive",
        "connection", "content-length", "x-forwarded-for", "transfer-encoding", "proxy-authorization-x",
    ]

    private func equal(_ bytes: [UInt8], _ literal: StaticString, ignoringCase: Bool) -> Bool {
        // Inside a larger buffer, as names are, so that a wrong load would read a neighbour.
        let buffer = Array("@@".utf8) + bytes + Array("@@".utf8)
        return buffer.withUnsafeBytes { bytesEqual($0, 2..<2 + bytes.count, literal, ignoringCase: ignoringCase) }
    }

    private func reference(_ bytes: [UInt8], _ literal: StaticString, ignoringCase: Bool) -> Bool {
        let text = Array(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
        let lowered = bytes.map { ignoringCase && $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        return lowered == text
    }

    func testEveryByteInEveryPositionOfEveryLiteral() {
        for literal in literals {
            let text = Array(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
            for position in text.indices {
                for byte in UInt8(0)...0xFF {
                    var bytes = text
                    bytes[position] = byte
                    for ignoringCase in [false, true] {
                        let expected = reference(bytes, literal, ignoringCase: ignoringCase)
                        XCTAssertEqual(
                            equal(bytes, literal, ignoringCase: ignoringCase), expected,
                            "\(literal): byte \(byte) at \(position), ignoringCase \(ignoringCase)")
                    }
                }
            }
        }
    }

    func testEveryCaseAndLengthsOneOff() {
        for literal in literals {
            let text = Array(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
            let upper = text.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
            let mixed = text.indices.map { $0 % 2 == 0 ? upper[$0] : text[$0] }
            for bytes in [text, upper, mixed] {
                XCTAssertTrue(equal(bytes, literal, ignoringCase: true), "\(literal)")
                XCTAssertEqual(equal(bytes, literal, ignoringCase: false), bytes == text, "\(literal)")
                XCTAssertFalse(equal(bytes + [UInt8(ascii: "s")], literal, ignoringCase: true), "\(literal) longer")
                XCTAssertFalse(equal(Array(bytes.dropLast()), literal, ignoringCase: true), "\(literal) shorter")
                XCTAssertFalse(equal(Array(bytes.dropFirst()), literal, ignoringCase: true), "\(literal) without its first")
            }
        }
        XCTAssertTrue(equal([], "", ignoringCase: true))
    }

    /// The names a proxy must drop or rewrite, in any case; near names pass.
    func testProxyKindsOfHopByHopNames() {
        let kinds: [(String, ProxyHeaders.Kind)] = [
            ("te", .hopByHop), ("upgrade", .hopByHop), ("keep-alive", .hopByHop), ("transfer-encoding", .hopByHop),
            ("proxy-connection", .hopByHop), ("proxy-authorization", .hopByHop), ("proxy-authenticate", .hopByHop),
            ("proxy-a", .hopByHop), ("proxy-", .hopByHop), ("connection", .connection), ("trailer", .trailer), ("via", .via),
            ("host", .reframed), ("expect", .reframed), ("content-length", .reframed), ("forwarded", .forwarded),
            ("x-forwarded-for", .forwardedFor),
        ]
        for (name, expected) in kinds {
            let upper = name.uppercased()
            let mixed = String(name.enumerated().map { $0.offset % 2 == 1 ? Character($0.element.uppercased()) : $0.element })
            for variant in [name, upper, mixed] {
                XCTAssertEqual(kind(variant), expected, variant)
                if expected != .hopByHop || !name.hasPrefix("proxy-") {
                    XCTAssertEqual(kind(variant + "s"), .pass, variant + "s")
                    XCTAssertEqual(kind(String(variant.dropLast())), .pass, "\(variant) shorter")
                }
            }
            // A near name: each letter changed for its neighbour in the alphabet.
            for index in name.utf8.indices where name.utf8[index] >= 0x61 && name.utf8[index] < 0x7A {
                var bytes = Array(name.utf8)
                bytes[name.utf8.distance(from: name.utf8.startIndex, to: index)] += 1
                let near = String(decoding: bytes, as: UTF8.self)
                if !near.hasPrefix("proxy-") { XCTAssertEqual(kind(near), .pass, near) }
            }
        }
        for name in ["proxy", "Proxy_Authorization", "xproxy-foo", "content-lengths", "content_length", "t", "tee"] {
            XCTAssertEqual(kind(name), .pass, name)
        }
    }

    private func kind(_ name: String) -> ProxyHeaders.Kind {
        Array(name.utf8).withUnsafeBytes { ProxyHeaders.kind($0) }
    }
}
