import NIOCore
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// The frame parser: headers of each length form, masked or not, taken whole or not at all;
/// payloads handed out as they arrive, unmasked the same however they are cut.
final class WebSocketFrameParserTests: XCTestCase {
    /// Everything the parser makes of `pieces` fed one after another, what a piece leaves
    /// unparsed (a header cut short) kept for the next, as the handler keeps it: the headers,
    /// and the payload (unmasked) with "|" where a frame ends.
    private func parse(_ pieces: [ByteBuffer]) -> (headers: [WebSocketFrameHeader], payload: [UInt8]) {
        var parser = WebSocketFrameParser()
        var headers: [WebSocketFrameHeader] = []
        var payload: [UInt8] = []
        var bytes = ByteBuffer()
        for piece in pieces {
            var piece = piece
            bytes.writeBuffer(&piece)
            while let event = parser.next(&bytes) {
                switch event {
                case .header(let header): headers.append(header)
                case .payload(let chunk, let frameEnd):
                    var unmasked = ByteBuffer()
                    chunk.unmask(into: &unmasked)
                    payload += Array(unmasked.readableBytesView)
                    if frameEnd { payload += Array("|".utf8) }
                }
            }
            XCTAssertLessThan(bytes.readableBytes, 14, "only a header cut short is left")
        }
        XCTAssertEqual(bytes.readableBytes, 0)
        return (headers, payload)
    }

    func testHeadersOfEachLengthForm() {
        for length in [0, 1, 125, 126, 65535, 65536, 70000] {
            let frame = WebSocketFrame.client(.binary, [UInt8](repeating: 7, count: length), fin: false, rsv1: true)
            let (headers, payload) = parse([frame.wire])
            XCTAssertEqual(headers.count, 1)
            XCTAssertEqual(headers.first?.length, UInt64(length))
            XCTAssertEqual(headers.first?.opcode, .binary)
            XCTAssertEqual(headers.first?.fin, false)
            XCTAssertEqual(headers.first?.rsv1, true)
            XCTAssertEqual(headers.first?.maskKey, 0x1234_5678)
            XCTAssertEqual(payload, [UInt8](repeating: 7, count: length) + Array("|".utf8))
        }
    }

    func testUnmaskedFramesAndOpcodesComeAsSent() {
        let (headers, payload) = parse([WebSocketFrame.client(.text, [1, 2], masked: false).wire, WebSocketFrame.client(.ping, []).wire])
        XCTAssertEqual(headers.map(\.maskKey), [nil, 0x1234_5678])
        XCTAssertEqual(headers.map(\.opcode), [.text, .ping])
        XCTAssertEqual(payload, [1, 2] + Array("||".utf8), "an empty payload still ends its frame")
    }

    /// The bytes of three frames cut at every position, and into single bytes: the same
    /// headers and payload, a header only once its last byte is there.
    func testEveryCutGivesTheSameFrames() {
        var stream = ByteBuffer()
        let text = Array("the quick brown fox jumps over the lazy dog".utf8)
        for frame in [
            WebSocketFrame.client(.text, text, fin: false), .client(.ping, "p"),
            .client(.continuation, [UInt8](repeating: 0xAB, count: 300)),
        ] {
            var wire = frame.wire
            stream.writeBuffer(&wire)
        }
        let whole = parse([stream])
        XCTAssertEqual(whole.headers.count, 3)
        for cut in 1..<stream.readableBytes {
            var rest = stream
            let head = rest.readSlice(length: cut)!
            let parsed = parse([head, rest])
            XCTAssertEqual(parsed.headers, whole.headers, "cut at \(cut)")
            XCTAssertEqual(parsed.payload, whole.payload, "cut at \(cut)")
        }
        let bytes = stream.readableBytesView.map { ByteBuffer(bytes: [$0]) }
        let single = parse(bytes)
        XCTAssertEqual(single.payload, whole.payload)
    }

    func testAHeaderIsNotTakenUntilItsMaskingKeyIsThere() {
        var parser = WebSocketFrameParser()
        var bytes = ByteBuffer(bytes: [0x81, 0xFE, 0x01, 0x00, 0x11, 0x22, 0x33])
        XCTAssertNil(parser.next(&bytes))
        XCTAssertEqual(bytes.readableBytes, 7)
        bytes.writeInteger(UInt8(0x44))
        guard case .header(let header) = parser.next(&bytes) else { return XCTFail("no header") }
        XCTAssertEqual(header.length, 256)
        XCTAssertEqual(header.maskKey, 0x1122_3344)
        XCTAssertNil(parser.next(&bytes), "no payload byte yet")
    }

    /// The 63-bit length is handed on as sent, for the state machine to refuse.
    func testAHugeLengthIsReported() {
        var parser = WebSocketFrameParser()
        var bytes = ByteBuffer(bytes: [0x82, 0xFF] + [UInt8](repeating: 0xFF, count: 8) + [1, 2, 3, 4])
        guard case .header(let header) = parser.next(&bytes) else { return XCTFail("no header") }
        XCTAssertEqual(header.length, UInt64.max)
    }

    /// Unmasking eight bytes at a time agrees with NIO's byte-by-byte unmasking from every
    /// offset into the key and for every length around the word size.
    func testUnmaskingAgreesWithNIOAtEveryOffset() {
        let key = WebSocketMaskingKey([0xA1, 0xB2, 0xC3, 0xD4])!
        for length in 0...19 {
            for offset in 0..<4 {
                let plain = ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 5) })
                var masked = plain
                masked.webSocketMask(key, indexOffset: offset)
                let chunk = WebSocketPayloadChunk(bytes: masked, maskKey: 0xA1B2_C3D4, maskOffset: offset)
                XCTAssertEqual(chunk.unmasked(allocator: ByteBufferAllocator()), plain, "length \(length) offset \(offset)")
            }
        }
    }
}
