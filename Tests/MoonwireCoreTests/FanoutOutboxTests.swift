import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// Records what the outbox hands it: each message with whether it was the last of a row (the
/// flush), and how many broadcasts were queued to it.
private final class RecordingSubscriber: ChannelSubscriber, @unchecked Sendable {
    let guid = WebSocketConnection.makeGUID()
    let eventLoop: EventLoop
    var takesEvents: Bool { false }
    var received: [String] = []
    var flushes = 0
    var queued = 0

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    func broadcastQueued() { queued += 1 }

    func deliverOnLoop(_ message: ChannelMessage, queued: Bool, flush: Bool) {
        received.append(String(buffer: message.payload))
        if flush { flushes += 1 }
    }
}

/// The outbox serves a small fan-out at once, spreads a large one over the loop's turns in the
/// order broadcasts were posted, and hands a member broadcasts in a row together.
final class FanoutOutboxTests: XCTestCase {
    private let loop = EmbeddedEventLoop()

    private func members(_ count: Int) -> (ChannelMembers, [RecordingSubscriber]) {
        let list = (0..<count).map { _ in RecordingSubscriber(eventLoop: loop) }
        return (ChannelMembers(list), list)
    }

    private func message(_ text: String) -> ChannelMessage {
        ChannelMessage(payload: ByteBuffer(string: text), binary: false, event: nil)
    }

    func testAFewSubscribersAreServedAtOnce() {
        let outbox = FanoutOutbox(eventLoop: loop)
        let (group, list) = members(FanoutOutbox.connectionsPerTurn)
        outbox.post(message("now"), to: group)
        XCTAssertTrue(list.allSatisfy { $0.received == ["now"] && $0.flushes == 1 && $0.queued == 0 })
    }

    func testManySubscribersAreServedOverTurnsInOrderAndTogether() {
        let outbox = FanoutOutbox(eventLoop: loop)
        let (group, list) = members(3 * FanoutOutbox.connectionsPerTurn + 7)
        for text in ["one", "two", "three"] { outbox.post(message(text), to: group) }
        let (few, fewList) = members(2)
        outbox.post(message("later"), to: few)
        XCTAssertTrue(list.allSatisfy { $0.received.isEmpty && $0.queued == 3 }, "nothing is sent inside the publish")
        XCTAssertTrue(fewList.allSatisfy { $0.received.isEmpty }, "a small fan-out waits behind a queued one")
        loop.advanceTime(by: FanoutOutbox.pause)
        XCTAssertEqual(list.filter { !$0.received.isEmpty }.count, FanoutOutbox.connectionsPerTurn, "one turn's worth")
        loop.advanceTime(by: .seconds(1))
        XCTAssertTrue(list.allSatisfy { $0.received == ["one", "two", "three"] && $0.flushes == 1 }, "one flush per member")
        XCTAssertTrue(fewList.allSatisfy { $0.received == ["later"] })
    }
}
