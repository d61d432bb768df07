import NIOCore
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// What a connection may hold, checked as the bytes arrive: invalid UTF-8 failed in the middle
/// of a frame, sizes known from a header failed before the payload, control frames, the
/// server's budget of partial messages, and the message timeout.
final class WebSocketStateMachineLimitsTests: XCTestCase, WebSocketMachineTesting {
    /// The frame's bytes cut after `cuts` (positions in the wire bytes).
    private func cut(_ frame: WebSocketFrame, at cuts: [Int]) -> [ByteBuffer] {
        var wire = frame.wire
        var pieces: [ByteBuffer] = []
        var taken = 0
        for position in cuts {
            pieces.append(wire.readSlice(length: position - taken)!)
            taken = position
        }
        pieces.append(wire)
        return pieces
    }

    // MARK: UTF-8, fail fast

    /// Autobahn 6.4.3: valid bytes, then the invalid one, then the rest, in one frame: the
    /// connection fails when the invalid byte arrives, before the frame is complete.
    func testInvalidUTF8FailsAsSoonAsItArrivesInTheMiddleOfAFrame() {
        var machine = machine()
        let frame = WebSocketFrame.client(.text, Array("κόσμε".utf8) + [0xF4, 0x90] + Array("ok".utf8))
        let header = 6
        let results = receive(&machine, pieces: cut(frame, at: [header + 10, header + 12]))
        XCTAssertEqual(results, ["none", "fail 1007 text message is not valid UTF-8"])
    }

    /// Autobahn 6.4.4: the invalid sequence starts in one piece and is proven invalid by the
    /// first byte of the next.
    func testASequenceCutBetweenPiecesFailsAtTheByteThatBreaksIt() {
        var machine = machine()
        let frame = WebSocketFrame.client(.text, [0x61, 0xF4, 0x90, 0x80, 0x80, 0x62])
        XCTAssertEqual(receive(&machine, pieces: cut(frame, at: [8, 9])), ["none", "fail 1007 text message is not valid UTF-8"])
        var valid = self.machine()
        let fine = WebSocketFrame.client(.text, [0x61, 0xF4, 0x8F, 0xBF, 0xBF, 0x62])
        XCTAssertEqual(receive(&valid, pieces: cut(fine, at: [8, 9])), ["none", "none", "message text a\u{10FFFF}b"])
    }

    func testCompressedTextFailsBeforeItsFrameEnds() {
        let client = PerMessageDeflate(PerMessageDeflateParameters())!
        let text = ByteBuffer(bytes: Array("ok".utf8) + [0xFF] + [UInt8](repeating: 0x61, count: 4000))
        let compressed = client.compress(text, allocator: ByteBufferAllocator())
        var machine = machine(deflate: PerMessageDeflate(PerMessageDeflateParameters())) { $0.maxMessageSize = 1 << 20 }
        let frame = WebSocketFrame.client(.text, Array(compressed.readableBytesView), rsv1: true)
        let results = receive(&machine, pieces: cut(frame, at: [frame.wire.readableBytes - 3]))
        XCTAssertEqual(results, ["fail 1007 text message is not valid UTF-8"])
    }

    // MARK: Sizes from the header

    func testAFrameTooLargeFailsOnItsHeader() {
        var machine = machine()
        let header = WebSocketFrame.client(.binary, [UInt8](repeating: 1, count: 17)).wire.getSlice(at: 0, length: 6)!
        XCTAssertEqual(receive(&machine, pieces: [header]), ["fail 1009 message larger than 16 bytes"])
        var huge = self.machine()
        let length = ByteBuffer(bytes: [0x82, 0xFF] + [UInt8](repeating: 0xFF, count: 8) + [1, 2, 3, 4])
        XCTAssertEqual(receive(&huge, pieces: [length]), ["fail 1009 message larger than 16 bytes"])
    }

    /// Compressed bytes are bounded too (with deflate's slack for incompressible data), so a
    /// stream of blocks that inflate to nothing cannot go on forever.
    func testCompressedBytesBeyondTheLimitAndItsSlackFail() {
        var machine = machine(deflate: PerMessageDeflate(PerMessageDeflateParameters()))
        let header = WebSocketFrame.client(.binary, [UInt8](repeating: 0, count: 81), rsv1: true).wire.getSlice(at: 0, length: 6)!
        XCTAssertEqual(receive(&machine, pieces: [header]), ["fail 1009 message larger than 16 bytes"])
    }

    // MARK: Control frames

    func testControlFrameRules() {
        var fragmented = machine()
        XCTAssertEqual(receive(&fragmented, .client(.ping, "p", fin: false)), "fail 1002 fragmented control frame")
        var long = machine()
        XCTAssertEqual(
            receive(&long, .client(.pong, [UInt8](repeating: 0x61, count: 126))), "fail 1002 control frame longer than 125 bytes")
        var split = machine()
        XCTAssertEqual(receive(&split, pieces: cut(.client(.ping, "hello"), at: [6, 8])), ["none", "none", "pong hello"])
    }

    // MARK: The budget of partial messages

    func testPartialMessagesShareTheServersBudget() {
        let budget = WebSocketMessageBudget(limit: 100_000)
        let bytes = [UInt8](repeating: 0x61, count: 40_000)
        var first = machine(budget: budget) { $0.maxMessageSize = 1 << 20 }
        var second = machine(budget: budget) { $0.maxMessageSize = 1 << 20 }
        let frame = WebSocketFrame.client(.text, bytes, fin: false)
        XCTAssertEqual(receive(&first, pieces: cut(frame, at: [10_000])), ["none", "none"])
        XCTAssertEqual(budget.bytesHeld, 65_536, "the capacity of the first message's buffer")
        let refused = receive(&second, pieces: cut(frame, at: [10_000]))
        XCTAssertEqual(refused, ["none", "fail 1009 partial messages over the server's budget of 100000 bytes"])
        XCTAssertEqual(budget.bytesHeld, 65_536, "the refused message gave back what it held")
        XCTAssertEqual(receive(&first, .client(.continuation, "!")), "message text \(String(repeating: "a", count: 40_000))!")
        XCTAssertEqual(budget.bytesHeld, 0, "a delivered message gives its share back")
    }

    func testAPartialMessageDroppedByACloseGivesItsShareBack() {
        let budget = WebSocketMessageBudget(limit: 1 << 20)
        var closing = machine(budget: budget) { $0.maxMessageSize = 1 << 20 }
        _ = receive(&closing, pieces: cut(.client(.binary, [UInt8](repeating: 1, count: 3000), fin: false), at: [100]))
        XCTAssertGreaterThan(budget.bytesHeld, 0)
        closing.closeFrameSent()
        XCTAssertEqual(budget.bytesHeld, 0)
        var ended = machine(budget: budget) { $0.maxMessageSize = 1 << 20 }
        _ = receive(&ended, pieces: cut(.client(.binary, [UInt8](repeating: 1, count: 3000), fin: false), at: [100]))
        XCTAssertTrue(ended.reportClose())
        XCTAssertEqual(budget.bytesHeld, 0)
    }

    /// A compressed bomb stops at the budget while it inflates, not at max_message_size.
    func testACompressedBombStopsAtTheBudget() {
        let budget = WebSocketMessageBudget(limit: 100_000)
        let client = PerMessageDeflate(PerMessageDeflateParameters())!
        let bomb = client.compress(ByteBuffer(repeating: 0x61, count: 1 << 20), allocator: ByteBufferAllocator())
        var machine = machine(deflate: PerMessageDeflate(PerMessageDeflateParameters()), budget: budget) {
            $0.maxMessageSize = 4 << 20
        }
        let frame = WebSocketFrame.client(.text, Array(bomb.readableBytesView), fin: false, rsv1: true)
        XCTAssertEqual(receive(&machine, frame), "fail 1009 partial messages over the server's budget of 100000 bytes")
        XCTAssertEqual(budget.bytesHeld, 0)
    }

    func testTheBudgetRefusesWhatWouldGoOverAndTakesNothingThen() {
        let budget = WebSocketMessageBudget(limit: 10)
        XCTAssertTrue(budget.reserve(6))
        XCTAssertFalse(budget.reserve(5))
        XCTAssertTrue(budget.reserve(4))
        budget.release(10)
        XCTAssertEqual(budget.bytesHeld, 0)
        var share: WebSocketMessageBudgetShare? = WebSocketMessageBudgetShare(budget: budget)
        XCTAssertEqual(share?.resize(to: 8), true)
        XCTAssertEqual(share?.resize(to: 11), false)
        XCTAssertEqual(share?.resize(to: 3), true)
        XCTAssertEqual(budget.bytesHeld, 3)
        share = nil
        XCTAssertEqual(budget.bytesHeld, 0, "a share gives back what it holds when it goes")
    }

    // MARK: Message timeout

    func testAMessageNotWholeWithinTheTimeoutFails1008() {
        var machine = machine()
        XCTAssertNil(machine.messageDeadline)
        _ = receive(&machine, .client(.text, "he", fin: false), now: later(1))
        XCTAssertEqual(machine.messageDeadline, later(6))
        _ = receive(&machine, .client(.continuation, "l", fin: false), now: later(5))
        XCTAssertEqual(machine.messageDeadline, later(6), "timed from the message's first frame")
        XCTAssertEqual(describe(machine.messageTimerFired(now: later(5))), "none")
        XCTAssertEqual(describe(machine.messageTimerFired(now: later(6))), "fail 1008 message not complete within 5.0 seconds")
    }

    func testAWholeMessageOrOurCloseFrameEndsTheTimer() {
        var machine = machine()
        _ = receive(&machine, .client(.text, "he", fin: false))
        XCTAssertEqual(receive(&machine, .client(.continuation, "y")), "message text hey")
        XCTAssertNil(machine.messageDeadline)
        XCTAssertEqual(describe(machine.messageTimerFired(now: later(60))), "none")
        _ = receive(&machine, .client(.binary, "he", fin: false))
        machine.closeFrameSent()
        XCTAssertNil(machine.messageDeadline)
    }
}
