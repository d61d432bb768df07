import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// Records what the outbox hands it: each message with whether it was the last of a row (the
/// flush); `onDelivery` runs after each (a script that hears its connection drained).
private final class RecordingSubscriber: ChannelSubscriber, @unchecked Sendable {
    let guid = WebSocketConnection.makeGUID()
    let eventLoop: EventLoop
    var takesEvents: Bool { false }
    var received: [String] = []
    var flushes = 0
    var onDelivery: ((RecordingSubscriber) -> Void)?

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    func deliverOnLoop(_ message: ChannelMessage, flush: Bool) {
        received.append(String(buffer: message.payload))
        if flush { flushes += 1 }
        onDelivery?(self)
    }
}

/// A clock the test moves: each reading returns the time and then moves it on by `step`.
private final class SteppingClock: @unchecked Sendable {
    private var time = NIODeadline.uptimeNanoseconds(1_000_000_000)
    var step: TimeAmount
    private(set) var readings = 0

    init(step: TimeAmount) { self.step = step }

    func read() -> NIODeadline {
        defer { time = time + step }
        readings += 1
        return time
    }
}

/// The outbox serves a small fan-out at once, spreads a large one over the loop's turns (each
/// as long as the turn budget) in the order broadcasts were posted, and hands a member
/// broadcasts in a row together.
final class FanoutOutboxTests: XCTestCase {
    private let loop = EmbeddedEventLoop()

    private func members(_ count: Int) -> (ChannelMembers, [RecordingSubscriber]) {
        let list = (0..<count).map { _ in RecordingSubscriber(eventLoop: loop) }
        return (ChannelMembers(list), list)
    }

    private func message(_ text: String) -> ChannelMessage {
        ChannelMessage(payload: ByteBuffer(string: text), binary: false, event: nil)
    }

    private func outbox(_ clock: SteppingClock) -> FanoutOutbox {
        FanoutOutbox(eventLoop: loop, clock: { clock.read() })
    }

    func testAFewSubscribersAreServedAtOnce() {
        let outbox = outbox(SteppingClock(step: .zero))
        let (group, list) = members(FanoutOutbox.deliveredAtOnce)
        outbox.post(message("now"), to: group)
        XCTAssertTrue(list.allSatisfy { $0.received == ["now"] && $0.flushes == 1 })
    }

    func testManySubscribersAreServedOverTurnsInOrderAndTogether() {
        let clock = SteppingClock(step: .microseconds(100))
        let outbox = outbox(clock)
        let (group, list) = members(1000)
        for text in ["one", "two", "three"] { outbox.post(message(text), to: group) }
        let (few, fewList) = members(2)
        outbox.post(message("later"), to: few)
        XCTAssertTrue(list.allSatisfy { $0.received.isEmpty }, "nothing is sent inside the publish")
        XCTAssertTrue(fewList.allSatisfy { $0.received.isEmpty }, "a small fan-out waits behind a queued one")
        loop.advanceTime(by: FanoutOutbox.pause)
        let firstTurn = list.filter { !$0.received.isEmpty }.count
        XCTAssertTrue(firstTurn > 0 && firstTurn < list.count, "one turn's worth: \(firstTurn)")
        XCTAssertTrue(list.prefix(firstTurn).allSatisfy { $0.received == ["one", "two", "three"] }, "a turn serves members in order")
        loop.advanceTime(by: .seconds(1))
        XCTAssertTrue(list.allSatisfy { $0.received == ["one", "two", "three"] && $0.flushes == 1 }, "one flush per member")
        XCTAssertTrue(fewList.allSatisfy { $0.received == ["later"] })
    }

    func testATurnEndsAtTheFirstReadingOfTheClockPastItsBudget() {
        let clock = SteppingClock(step: FanoutOutbox.turnBudget + .nanoseconds(1))
        let outbox = outbox(clock)
        let (group, list) = members(5 * FanoutOutbox.clockStride)
        outbox.post(message("m"), to: group)
        for turn in 1...5 {
            loop.advanceTime(by: FanoutOutbox.pause)
            XCTAssertEqual(list.filter { !$0.received.isEmpty }.count, turn * FanoutOutbox.clockStride, "turn \(turn)")
        }
        XCTAssertTrue(list.allSatisfy { $0.received == ["m"] })
    }

    func testATurnWithinItsBudgetServesEveryone() {
        let outbox = outbox(SteppingClock(step: .zero))
        let (group, list) = members(10 * FanoutOutbox.deliveredAtOnce)
        outbox.post(message("a"), to: group)
        outbox.post(message("b"), to: group)
        loop.advanceTime(by: FanoutOutbox.pause)
        XCTAssertTrue(list.allSatisfy { $0.received == ["a", "b"] && $0.flushes == 1 })
    }

    func testAMemberSentSomethingIsHandedItsWaitingBroadcastsFirstAndTheTurnsSkipIt() {
        let outbox = outbox(SteppingClock(step: .zero))
        let (group, list) = members(200)
        let (other, otherList) = members(100)
        outbox.post(message("one"), to: group)
        outbox.post(message("x"), to: other)
        outbox.post(message("two"), to: group)
        let sender = list[150]
        outbox.deliverWaiting(to: sender)
        XCTAssertEqual(sender.received, ["one", "two"])
        XCTAssertEqual(sender.flushes, 1, "one flush, after the last")
        outbox.deliverWaiting(to: otherList[0])
        XCTAssertEqual(otherList[0].received, ["x"])
        outbox.deliverWaiting(to: sender)
        XCTAssertEqual(sender.received, ["one", "two"], "nothing twice")
        loop.advanceTime(by: FanoutOutbox.pause)
        XCTAssertTrue(list.allSatisfy { $0.received == ["one", "two"] }, "the turns skip what went out of turn")
        XCTAssertTrue(otherList.allSatisfy { $0.received == ["x"] })
        outbox.deliverWaiting(to: sender)
        XCTAssertEqual(sender.received, ["one", "two"], "nothing waits once delivered")
    }

    func testAMemberMadeToSendDuringItsOwnDeliveryGetsTheRestOfItsRunFirst() {
        let outbox = outbox(SteppingClock(step: .zero))
        let (group, list) = members(100)
        for text in ["a", "b", "c"] { outbox.post(message(text), to: group) }
        let member = list[40]
        var sentAfter: [String] = []
        member.onDelivery = { subscriber in
            guard sentAfter.isEmpty, subscriber.received == ["a"] else { return }
            outbox.deliverWaiting(to: subscriber)
            sentAfter = subscriber.received
        }
        loop.advanceTime(by: FanoutOutbox.pause)
        XCTAssertEqual(sentAfter, ["a", "b", "c"], "what it sends after its first goes after the run")
        XCTAssertEqual(member.received, ["a", "b", "c"], "each once")
        XCTAssertTrue(list.allSatisfy { $0.received == ["a", "b", "c"] })
    }

    func testADeliveryThatMakesOtherMembersSendHandsOnlyWhatTheyHaveNotHad() {
        let outbox = outbox(SteppingClock(step: .zero))
        let (group, list) = members(100)
        for text in ["a", "b"] { outbox.post(message(text), to: group) }
        list[50].onDelivery = { subscriber in
            guard subscriber.received == ["a", "b"] else { return }
            outbox.deliverWaiting(to: list[10])
            outbox.deliverWaiting(to: list[90])
        }
        loop.advanceTime(by: FanoutOutbox.pause)
        XCTAssertEqual(list[10].received, ["a", "b"], "served earlier in the turn: nothing again")
        XCTAssertEqual(list[90].received, ["a", "b"], "ahead in the turn: served out of turn, then skipped")
        XCTAssertTrue(list.allSatisfy { $0.received == ["a", "b"] })
    }

    func testAfterATurnStoppedMidwayOnlyTheMembersItDidNotReachAreHandedTheirBroadcasts() {
        let clock = SteppingClock(step: FanoutOutbox.turnBudget + .nanoseconds(1))
        let outbox = outbox(clock)
        let (group, list) = members(FanoutOutbox.deliveredAtOnce + 4 * FanoutOutbox.clockStride)
        for text in ["a", "b"] { outbox.post(message(text), to: group) }
        loop.advanceTime(by: FanoutOutbox.pause)
        let reached = list.filter { !$0.received.isEmpty }.count
        XCTAssertTrue(reached > 0 && reached < list.count)
        outbox.deliverWaiting(to: list[reached - 1])
        outbox.deliverWaiting(to: list[reached])
        XCTAssertEqual(list[reached - 1].received, ["a", "b"], "reached by the turn: nothing again")
        XCTAssertEqual(list[reached].received, ["a", "b"], "not reached: handed both")
        loop.advanceTime(by: .seconds(1))
        XCTAssertTrue(list.allSatisfy { $0.received == ["a", "b"] && $0.flushes == 1 })
    }
}
