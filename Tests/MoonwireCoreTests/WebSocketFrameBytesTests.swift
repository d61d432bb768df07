import NIOCore
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// The bytes of the server's frames: the header in its shortest form for every length class
/// (RFC 6455 section 5.2), FIN (always: the server never fragments) and RSV1, one buffer up to the copy limit and two beyond it.
final class WebSocketFrameBytesTests: XCTestCase {
    private func bytes(_ frame: OutgoingWebSocketFrame) -> (whole: [UInt8], buffers: Int) {
        let (first, rest) = WebSocketFrameBytes.encode(frame, allocator: ByteBufferAllocator())
        return (Array(first.readableBytesView) + Array(rest?.readableBytesView ?? ByteBuffer().readableBytesView), rest == nil ? 1 : 2)
    }

    private func frame(_ length: Int, opcode: WebSocketOpcode = .binary, rsv1: Bool = false) -> OutgoingWebSocketFrame {
        OutgoingWebSocketFrame(opcode: opcode, compressed: rsv1, payload: ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0) }))
    }

    func testTheLengthTakesItsShortestForm() {
        let cases: [(Int, [UInt8])] = [
            (0, [0x82, 0]), (125, [0x82, 125]), (126, [0x82, 126, 0, 126]), (4096, [0x82, 126, 0x10, 0]),
            (4097, [0x82, 126, 0x10, 0x01]), (65535, [0x82, 126, 0xFF, 0xFF]),
            (65536, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ]
        for (length, header) in cases {
            let (whole, _) = bytes(frame(length))
            XCTAssertEqual(Array(whole.prefix(header.count)), header, "length \(length)")
            XCTAssertEqual(whole.count, header.count + length, "length \(length)")
            XCTAssertEqual(Array(whole.dropFirst(header.count)), (0..<length).map { UInt8(truncatingIfNeeded: $0) }, "length \(length)")
        }
    }

    func testSmallPayloadsGoInOneBufferAndLargeOnesInTwo() {
        XCTAssertEqual(bytes(frame(WebSocketFrameBytes.copyLimit)).buffers, 1)
        XCTAssertEqual(bytes(frame(WebSocketFrameBytes.copyLimit + 1)).buffers, 2)
    }

    func testFinRsv1AndTheOpcode() {
        XCTAssertEqual(bytes(frame(1, opcode: .text)).whole.first, 0x81)
        XCTAssertEqual(bytes(frame(1, opcode: .text, rsv1: true)).whole.first, 0xC1)
        XCTAssertEqual(bytes(frame(2, opcode: .connectionClose)).whole.prefix(2), [0x88, 2])
        XCTAssertEqual(bytes(frame(0, opcode: .pong)).whole, [0x8A, 0])
    }
}
