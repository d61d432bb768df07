import NIOCore
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// The RFC 6455 rules of a connection, without a channel: every kind of frame in every phase of
/// the closing handshake, fragments in each delivery mode, compression, UTF-8, sizes, close
/// codes, errors, the exactly-once close report, the heartbeat and the send queue.
final class WebSocketStateMachineTests: XCTestCase, WebSocketMachineTesting {
    private static let allPhases: [Machine.Phase] = [.open, .closeSent, .ended, .closed]

    // MARK: Closing handshake

    func testCloseFrameSentMovesOpenToCloseSentAndEndedToClosed() {
        let expected: [Machine.Phase: Machine.Phase] = [
            .open: .closeSent, .closeSent: .closeSent, .ended: .closed, .closed: .closed,
        ]
        for phase in Self.allPhases {
            var machine = machine(phase)
            machine.closeFrameSent()
            XCTAssertEqual(machine.phase, expected[phase], "\(phase)")
            XCTAssertTrue(machine.sentClose)
        }
    }

    func testCloseIsReportedExactlyOnce() {
        let expected: [Machine.Phase: (Bool, Machine.Phase)] = [
            .open: (true, .ended), .closeSent: (true, .closed), .ended: (false, .ended), .closed: (false, .closed),
        ]
        for phase in Self.allPhases {
            var machine = machine(phase)
            XCTAssertEqual(machine.reportClose(), expected[phase]?.0, "\(phase)")
            XCTAssertEqual(machine.phase, expected[phase]?.1, "\(phase)")
            XCTAssertFalse(machine.reportClose(), "\(phase)")
        }
    }

    func testClientCloseIsEchoedUnlessOursWentOutAndIsReported() {
        for phase in Self.allPhases {
            var machine = machine(phase)
            let reply = machine.sentClose ? "no reply" : "reply 1000"
            let received = receive(&machine, .clientClose(1000, Array("bye".utf8)))
            XCTAssertEqual(received, "closeReceived 1000 'bye' \(reply)", "\(phase)")
        }
        var empty = machine()
        XCTAssertEqual(receive(&empty, .clientClose(nil)), "closeReceived 1005 '' reply empty")
    }

    func testCloseCodesAPeerMaySend() {
        for code: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999] {
            var machine = machine()
            XCTAssertEqual(receive(&machine, .clientClose(code)), "closeReceived \(code) '' reply \(code)")
        }
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535] {
            var machine = machine()
            XCTAssertEqual(receive(&machine, .clientClose(code)), "fail 1002 invalid close code \(code)")
        }
    }

    func testMalformedCloseFramesFail() {
        var short = machine()
        XCTAssertEqual(receive(&short, .client(.connectionClose, [0x03])), "fail 1002 close frame with a 1-byte payload")
        var badReason = machine()
        XCTAssertEqual(receive(&badReason, .clientClose(1000, [0xC3])), "fail 1007 close reason is not valid UTF-8")
        var afterOurs = machine(.closeSent)
        XCTAssertEqual(receive(&afterOurs, .client(.connectionClose, [0x03])), "closeTCP")
    }

    // MARK: Frame rules

    func testUnmaskedAndReservedBitFramesFailWhileNoCloseWasSent() {
        let frames: [(WebSocketFrame, String)] = [
            (.client(.text, [0x61], masked: false), "unmasked client frame"),
            (.client(.text, [0x61], rsv2: true), "reserved bits set"),
            (.client(.text, [0x61], rsv3: true), "reserved bits set"),
            (.client(.text, [0x61], rsv1: true), "reserved bits set"),
            (.client(.ping, [], masked: false), "unmasked client frame"),
        ]
        for phase in Self.allPhases {
            for (frame, message) in frames {
                var machine = machine(phase)
                let expected = machine.sentClose ? "closeTCP" : "fail 1002 \(message)"
                XCTAssertEqual(receive(&machine, frame), expected, "\(phase)")
            }
        }
    }

    func testCompressionBitIsOnlyForTheFirstFrameOfAMessage() {
        let deflate = PerMessageDeflate(PerMessageDeflateParameters())
        for opcode in [WebSocketOpcode.continuation, .ping, .pong, .connectionClose] {
            var machine = machine(deflate: deflate)
            XCTAssertEqual(receive(&machine, .client(opcode, [], rsv1: true)), "fail 1002 reserved bits set", "\(opcode)")
        }
    }

    func testUnknownOpcodesFail() {
        for code: UInt8 in [0x3, 0x7, 0xB, 0xF] {
            let opcode = WebSocketOpcode(encodedWebSocketOpcode: code)!
            var machine = machine()
            XCTAssertEqual(receive(&machine, .client(opcode, [])), "fail 1002 unknown opcode \(opcode)")
            var closing = self.machine(.closeSent)
            XCTAssertEqual(receive(&closing, .client(opcode, [])), "closeTCP")
        }
    }

    func testPingIsAnsweredUntilOurCloseFrameAndPongIgnored() {
        for phase in Self.allPhases {
            var machine = machine(phase)
            let expected = machine.sentClose ? "none" : "pong hi"
            XCTAssertEqual(receive(&machine, .client(.ping, "hi")), expected, "\(phase)")
            XCTAssertEqual(receive(&machine, .client(.pong, "hi")), "none", "\(phase)")
        }
    }

    // MARK: Messages and fragments

    func testSingleFrameMessagesAreMessagesInEveryMode() {
        for mode in [WebSocketSettings.FragmentMode.buffer, .all, .fragments] {
            var machine = machine { $0.fragmentMode = mode }
            XCTAssertEqual(receive(&machine, .client(.text, "hello")), "message text hello", "\(mode)")
            XCTAssertEqual(receive(&machine, .client(.binary, "data")), "message binary data", "\(mode)")
        }
    }

    func testBufferModeAssemblesFragmentsIntoOneMessage() {
        var machine = machine()
        XCTAssertEqual(receive(&machine, .client(.text, "he", fin: false)), "none")
        XCTAssertEqual(receive(&machine, .client(.continuation, "ll", fin: false)), "none")
        XCTAssertEqual(receive(&machine, .client(.continuation, "o")), "message text hello")
        XCTAssertEqual(receive(&machine, .client(.binary, "next")), "message binary next")
    }

    func testAllModeDeliversEachFragmentAndTheMessage() {
        var machine = machine { $0.fragmentMode = .all }
        XCTAssertEqual(receive(&machine, .client(.binary, "he", fin: false)), "fragment binary he")
        machine.fragmentDelivered()
        XCTAssertEqual(receive(&machine, .client(.continuation, "ll", fin: false)), "fragment binary ll")
        machine.fragmentDelivered()
        XCTAssertEqual(receive(&machine, .client(.continuation, "o")), "fragment binary o final, message hello")
    }

    func testFragmentsModeDeliversFragmentsOnly() {
        var machine = machine { $0.fragmentMode = .fragments }
        XCTAssertEqual(receive(&machine, .client(.text, "he", fin: false)), "fragment text he")
        machine.fragmentDelivered()
        XCTAssertEqual(receive(&machine, .client(.continuation, "llo")), "fragment text llo final")
        machine.fragmentDelivered()
        XCTAssertEqual(receive(&machine, .client(.text, "next")), "message text next")
    }

    func testFragmentedMessageWaitsForItsFragmentToBeDelivered() {
        var machine = machine { $0.fragmentMode = .fragments }
        _ = receive(&machine, .client(.text, "he", fin: false))
        // The delegate closes while it has the fragment: the message stays, so the client's
        // fragments on their way are ignored rather than failed.
        machine.closeFrameSent()
        machine.fragmentDelivered()
        XCTAssertEqual(receive(&machine, .client(.continuation, "llo")), "none")
    }

    func testControlFramesMayComeBetweenFragments() {
        var machine = machine()
        _ = receive(&machine, .client(.text, "he", fin: false))
        XCTAssertEqual(receive(&machine, .client(.ping, "p")), "pong p")
        XCTAssertEqual(receive(&machine, .client(.continuation, "y")), "message text hey")
    }

    func testFragmentSequenceViolationsFail() {
        var newInside = machine()
        _ = receive(&newInside, .client(.text, "a", fin: false))
        XCTAssertEqual(receive(&newInside, .client(.binary, "b")), "fail 1002 new message inside a fragmented one")
        var orphan = machine()
        XCTAssertEqual(receive(&orphan, .client(.continuation, "b")), "fail 1002 continuation without a message")
    }

    /// After our close frame, data frames are not delivered; as before the state machine, a
    /// new message is noted (so a second one, or a continuation of none, ends the connection).
    func testDataAfterOurCloseFrameIsIgnoredUntilItBreaksTheRules() {
        var machine = machine(.closeSent)
        XCTAssertEqual(receive(&machine, .client(.text, "a")), "none")
        XCTAssertEqual(receive(&machine, .client(.continuation, "b")), "none")
        XCTAssertEqual(receive(&machine, .client(.text, "c")), "closeTCP")
        var orphan = self.machine(.closeSent)
        XCTAssertEqual(receive(&orphan, .client(.continuation, "b")), "closeTCP")
        // Our close frame drops the message being assembled.
        var cut = self.machine()
        _ = receive(&cut, .client(.text, "a", fin: false))
        cut.closeFrameSent()
        XCTAssertEqual(receive(&cut, .client(.continuation, "b")), "closeTCP")
    }

    /// The connection ended without our close frame (frames decoded from what was left):
    /// they are handled as while open.
    func testFramesAfterTheConnectionEndedAreHandledAsWhileOpen() {
        var machine = machine(.ended)
        XCTAssertEqual(receive(&machine, .client(.text, "late")), "message text late")
        XCTAssertEqual(receive(&machine, .client(.continuation, "x")), "fail 1002 continuation without a message")
    }

    // MARK: Sizes and UTF-8

    private func bytes(_ count: Int) -> String { String(repeating: "x", count: count) }

    func testMessagesUpToTheLimitPassAndLargerOnesFail1009() {
        var machine = machine()
        XCTAssertEqual(receive(&machine, .client(.binary, bytes(16))), "message binary \(bytes(16))")
        XCTAssertEqual(receive(&machine, .client(.binary, bytes(17))), "fail 1009 message larger than 16 bytes")
        var fragmented = self.machine()
        _ = receive(&fragmented, .client(.text, bytes(10), fin: false))
        XCTAssertEqual(receive(&fragmented, .client(.continuation, bytes(7))), "fail 1009 message larger than 16 bytes")
    }

    /// In fragments mode nothing is assembled, so the limit holds for each fragment.
    func testFragmentsModeLimitsEachFragment() {
        var machine = machine { $0.fragmentMode = .fragments }
        _ = receive(&machine, .client(.text, bytes(10), fin: false))
        machine.fragmentDelivered()
        XCTAssertEqual(receive(&machine, .client(.continuation, bytes(10))), "fragment text \(bytes(10)) final")
    }

    func testTextMustBeUTF8EvenAcrossFragments() {
        var split = machine()
        XCTAssertEqual(receive(&split, .client(.text, [0xC3], fin: false)), "none")
        XCTAssertEqual(receive(&split, .client(.continuation, [0xA9])), "message text é")
        var invalid = machine()
        XCTAssertEqual(receive(&invalid, .client(.text, [0xFF])), "fail 1007 text message is not valid UTF-8")
        var cutShort = machine()
        XCTAssertEqual(receive(&cutShort, .client(.text, [0x61, 0xC3])), "fail 1007 text message is not valid UTF-8")
        var binary = machine()
        XCTAssertEqual(receive(&binary, .client(.binary, [0xFF])), "message binary \u{FFFD}")
        var unchecked = machine { $0.validateUTF8 = false }
        XCTAssertEqual(receive(&unchecked, .client(.text, [0xFF])), "message text \u{FFFD}")
    }

    // MARK: Compression

    private func compressed(_ text: String) -> [UInt8] {
        let client = PerMessageDeflate(PerMessageDeflateParameters())!
        let buffer = client.compress(ByteBuffer(string: text), allocator: ByteBufferAllocator())
        return Array(buffer.readableBytesView)
    }

    func testCompressedMessagesAreInflated() {
        let deflate = PerMessageDeflate(PerMessageDeflateParameters())
        var machine = machine(deflate: deflate)
        XCTAssertEqual(receive(&machine, .client(.text, compressed("hello hello"), rsv1: true)), "message text hello hello")
        let message = compressed("fragmented")
        XCTAssertEqual(receive(&machine, .client(.binary, Array(message.prefix(3)), fin: false, rsv1: true)), "none")
        XCTAssertEqual(receive(&machine, .client(.continuation, Array(message.dropFirst(3)))), "message binary fragmented")
    }

    func testCompressedFragmentsAreDeliveredInflated() {
        let deflate = PerMessageDeflate(PerMessageDeflateParameters())
        var machine = machine(deflate: deflate) { $0.fragmentMode = .all }
        let message = compressed("abcdef")
        let first = receive(&machine, .client(.text, Array(message.prefix(4)), fin: false, rsv1: true))
        machine.fragmentDelivered()
        let last = receive(&machine, .client(.continuation, Array(message.dropFirst(4))))
        XCTAssertTrue(first.hasPrefix("fragment text "), first)
        XCTAssertTrue(last.hasSuffix("final, message abcdef"), last)
    }

    func testCorruptOrOversizeCompressedMessagesFail() {
        var corrupt = machine(deflate: PerMessageDeflate(PerMessageDeflateParameters()))
        let garbage = WebSocketFrame.client(.text, [0xFF, 0xFF, 0xFF], rsv1: true)
        XCTAssertEqual(receive(&corrupt, garbage), "fail 1007 corrupt compressed message")
        var large = machine(deflate: PerMessageDeflate(PerMessageDeflateParameters()))
        let bomb = WebSocketFrame.client(.text, compressed(bytes(100)), rsv1: true)
        XCTAssertEqual(receive(&large, bomb), "fail 1009 message larger than 16 bytes")
    }

    // MARK: Errors

    func testErrorsByKind() {
        struct Unexpected: Error {}
        let cases: [(Error, String)] = [
            (IOError(errnoCode: 104, reason: "read"), "connectionLost"),
            (ChannelError.ioOnClosedChannel, "connectionLost"),
            (Unexpected(), "fail 1002 Unexpected()"),
        ]
        for phase in Self.allPhases {
            for (error, expected) in cases {
                var machine = machine(phase)
                let closes = machine.sentClose && expected != "connectionLost"
                XCTAssertEqual(describe(machine.errorCaught(error)), closes ? "closeTCP" : expected, "\(phase)")
            }
        }
    }

    // MARK: Heartbeat

    func testSilentClientIsDueAfterAnIntervalAndPingedUnlessTheDelegateHandlesIt() {
        var machine = machine()
        XCTAssertEqual(machine.heartbeatTick(now: later(29)), .none)
        XCTAssertEqual(machine.heartbeatTick(now: later(30)), .due)
        XCTAssertFalse(machine.heartbeatDue(handledByDelegate: true, now: later(30)))
        XCTAssertEqual(machine.heartbeatTick(now: later(59)), .none, "the delegate's heartbeat counts as heard")
        XCTAssertEqual(machine.heartbeatTick(now: later(60)), .due)
        XCTAssertTrue(machine.heartbeatDue(handledByDelegate: false, now: later(60)))
    }

    func testPingedClientThatStaysSilentTimesOut() {
        var machine = machine()
        XCTAssertTrue(machine.heartbeatDue(handledByDelegate: false, now: later(30)))
        XCTAssertEqual(machine.heartbeatTick(now: later(39)), .none)
        XCTAssertEqual(machine.heartbeatTick(now: later(40)), .timeOut)
    }

    func testAnyFrameAnswersThePing() {
        var machine = machine()
        XCTAssertTrue(machine.heartbeatDue(handledByDelegate: false, now: later(30)))
        _ = receive(&machine, .client(.text, "hi"), now: later(35))
        XCTAssertEqual(machine.heartbeatTick(now: later(40)), .none)
        XCTAssertEqual(machine.heartbeatTick(now: later(64)), .none)
        XCTAssertEqual(machine.heartbeatTick(now: later(65)), .due)
    }

    func testNoHeartbeatAfterOurCloseFrame() {
        for phase in Self.allPhases {
            var machine = machine(phase)
            let expected: Machine.HeartbeatAction = machine.sentClose ? .none : .due
            XCTAssertEqual(machine.heartbeatTick(now: later(100)), expected, "\(phase)")
        }
    }

    // MARK: Send queue

    func testNothingIsSentAfterOurCloseFrame() {
        for phase in Self.allPhases {
            var machine = machine(phase)
            let expected: Machine.SendAction = machine.sentClose ? .discard : .send(compressed: false)
            for opcode in [WebSocketOpcode.text, .binary, .ping, .pong] {
                XCTAssertEqual(machine.sendRequested(opcode, size: 1), expected, "\(phase) \(opcode)")
            }
        }
    }

    func testMessagesAtTheThresholdAreCompressedWhenDeflateWasAgreed() {
        var machine = machine(deflate: PerMessageDeflate(PerMessageDeflateParameters())) {
            $0.compressionThreshold = 4
            $0.sendQueueLimit = 100_000
        }
        XCTAssertEqual(machine.sendRequested(.text, size: 3), .send(compressed: false))
        XCTAssertEqual(machine.sendRequested(.text, size: 4), .send(compressed: true))
        XCTAssertEqual(machine.sendRequested(.ping, size: 4), .send(compressed: false))
        var plain = self.machine { $0.compressionThreshold = 4 }
        XCTAssertEqual(plain.sendRequested(.binary, size: 8), .send(compressed: false))
    }

    func testQueueDrainsWhenEverythingIsWrittenUnlessClosing() {
        var machine = machine()
        _ = machine.sendRequested(.text, size: 3)
        _ = machine.sendRequested(.text, size: 2)
        XCTAssertFalse(machine.frameWritten(size: 3).drained)
        XCTAssertTrue(machine.frameWritten(size: 2).drained)
        XCTAssertEqual(machine.sendQueue.bytes, 0)
        _ = machine.sendRequested(.text, size: 2)
        machine.closeFrameSent()
        XCTAssertFalse(machine.frameWritten(size: 2).drained)
    }
}
