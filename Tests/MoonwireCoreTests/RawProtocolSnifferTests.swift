import NIOCore
import XCTest

@testable import MoonwireCore

final class RawProtocolSnifferTests: XCTestCase {
    private func verdict(_ bytes: [UInt8]) -> PlainProtocol? {
        switch RawProtocolSniffer.classify(ByteBuffer(bytes: bytes)) {
        case .needMore: nil
        case .decided(let kind): kind
        }
    }

    private func verdict(_ text: String) -> PlainProtocol? { verdict(Array(text.utf8)) }

    func testHTTP1RequestLines() {
        for line in ["GET / HTTP/1.1\r\n", "POST ", "M-SEARCH * HTTP/1.1\r\n", "UPDATEREDIRECTREF /x", "PRI * HTTP/1.1\r\n"] {
            XCTAssertEqual(verdict(line), .http1, line)
        }
    }

    func testASlowHTTPClientIsNeverDecidedEarly() {
        // Every prefix of a method token waits: none of them rules HTTP out.
        for prefix in ["G", "GE", "GET", "OPTIONS", "M-SEARCH"] { XCTAssertNil(verdict(prefix), prefix) }
        XCTAssertEqual(verdict("GE" + "T / HTTP/1.1"), .http1)
    }

    func testTheHTTP2PrefaceWaitsUntilWhole() {
        let preface = RawProtocolSniffer.preface
        for count in 1..<preface.count { XCTAssertNil(verdict(Array(preface[..<count])), "\(count) bytes") }
        XCTAssertEqual(verdict(preface), .http2)
        XCTAssertEqual(verdict(preface + Array("more".utf8)), .http2)
    }

    func testTLSRecords() {
        XCTAssertNil(verdict([0x16]))
        XCTAssertEqual(verdict([0x16, 0x03]), .tls)
        XCTAssertEqual(verdict([0x16, 0x03, 0x01, 0x02, 0x00]), .tls)
        XCTAssertEqual(verdict([0x16, 0x01]), .unknown)
    }

    func testShortLinesAreUnknownAtTheirFirstNonTokenByte() {
        for line in ["HELO\r\n", "PING\n", "PING\r", "hello", "SSH-2.0-x\r\n", "get / HTTP/1.1", " GET /", "\r\nGET /"] {
            XCTAssertEqual(verdict(line), .unknown, line.debugDescription)
        }
    }

    func testBinaryGarbageIsUnknownAtOnce() {
        XCTAssertEqual(verdict([0x00]), .unknown)
        XCTAssertEqual(verdict([0xFF, 0xFE]), .unknown)
        XCTAssertEqual(verdict([0x80]), .unknown)
    }

    func testATokenTooLongForAMethodIsUnknown() {
        let longest = String(repeating: "A", count: RawProtocolSniffer.maxMethodLength)
        XCTAssertNil(verdict(longest))
        XCTAssertEqual(verdict(longest + " /"), .http1)
        XCTAssertEqual(verdict(longest + "A"), .unknown)
    }

    func testNeverMoreThanMaxBytesUndecided() {
        // Whatever the bytes, a verdict comes by maxBytes of them.
        let inputs: [[UInt8]] = [
            Array(String(repeating: "A", count: 40).utf8), RawProtocolSniffer.preface, Array("PRI * HTTP/2.0\r\n\r\nXX".utf8),
        ]
        for input in inputs {
            XCTAssertNotNil(verdict(Array(input.prefix(RawProtocolSniffer.maxBytes))), String(decoding: input, as: UTF8.self))
        }
    }

    func testAPrefaceThatDepartsIsJudgedAsARequestLine() {
        XCTAssertEqual(verdict("PRI * HTTP/2.0\r\n\r\nXX"), .http1)
        XCTAssertEqual(verdict("PRIX"), nil)
        XCTAssertEqual(verdict("PRI\n"), .unknown)
    }
}
