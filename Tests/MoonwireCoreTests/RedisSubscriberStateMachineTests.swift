import NIOCore
import XCTest

@testable import MoonwireCore

/// The subscriber connection's states without a socket: the handshake, subscriptions that
/// follow the node's channels, messages, and reconnects that resubscribe everything.
final class RedisSubscriberStateMachineTests: XCTestCase {
    private func message(_ topic: String, _ payload: String) -> RedisReply {
        .array([.bulk(Array("message".utf8)), .bulk(Array(topic.utf8)), .bulk(Array(payload.utf8))])
    }

    private func confirmation(_ kind: String, _ topic: String, _ count: Int64) -> RedisReply {
        .array([.bulk(Array(kind.utf8)), .bulk(Array(topic.utf8)), .integer(count)])
    }

    func testTheLinkIsUpOnceAuthAndTheFirstSubscriptionAreConfirmed() {
        var machine = RedisSubscriberStateMachine(handshake: [["AUTH", "secret"]])
        XCTAssertEqual(machine.want(["n", "c:a"]), [])
        XCTAssertEqual(machine.start(), [.connect])
        XCTAssertEqual(machine.start(), [])
        XCTAssertEqual(machine.connected(), [.send([["AUTH", "secret"], ["SUBSCRIBE", "c:a", "n"]])])
        XCTAssertEqual(machine.phase, .linking(handshakeReplies: 1, subscribing: true))
        XCTAssertEqual(machine.received(.status("OK")), [])
        XCTAssertEqual(machine.received(confirmation("subscribe", "c:a", 1)), [.linkUp])
        XCTAssertEqual(machine.received(confirmation("subscribe", "n", 2)), [])
        XCTAssertEqual(machine.phase, .linked)
        XCTAssertEqual(machine.received(message("n", "hi")), [.deliver(topic: "n", payload: Array("hi".utf8))])
    }

    func testAWrongPasswordClosesAndRetries() {
        var machine = RedisSubscriberStateMachine(handshake: [["AUTH", "wrong"]])
        _ = machine.want(["n"])
        _ = machine.start()
        _ = machine.connected()
        XCTAssertEqual(machine.received(.error("WRONGPASS invalid")), [.close("the handshake failed: WRONGPASS invalid")])
        XCTAssertEqual(
            machine.connectionLost(reason: "the handshake failed: WRONGPASS invalid"),
            [.failed("the handshake failed: WRONGPASS invalid"), .retry(after: .milliseconds(100))])
    }

    func testSubscriptionsFollowTheChannelsWithoutRepeats() {
        var machine = RedisSubscriberStateMachine(handshake: [])
        _ = machine.want(["n"])
        _ = machine.start()
        XCTAssertEqual(machine.connected(), [.send([["SUBSCRIBE", "n"]])])
        XCTAssertEqual(machine.received(confirmation("subscribe", "n", 1)), [.linkUp])
        XCTAssertEqual(machine.want(["n", "c:a", "c:b"]), [.send([["SUBSCRIBE", "c:a", "c:b"]])])
        XCTAssertEqual(machine.want(["n", "c:a", "c:b"]), [])
        XCTAssertEqual(machine.want(["n", "c:b", "c:c"]), [.send([["SUBSCRIBE", "c:c"], ["UNSUBSCRIBE", "c:a"]])])
        XCTAssertEqual(machine.received(confirmation("unsubscribe", "c:a", 2)), [])
        XCTAssertEqual(machine.requested, ["n", "c:b", "c:c"])
    }

    func testALostLinkReconnectsWithBackoffAndResubscribesEverything() {
        var machine = RedisSubscriberStateMachine(handshake: [])
        _ = machine.want(["n", "c:a"])
        _ = machine.start()
        _ = machine.connected()
        _ = machine.received(confirmation("subscribe", "c:a", 1))
        XCTAssertEqual(
            machine.connectionLost(reason: "the connection closed"),
            [.linkDown, .failed("the connection closed"), .retry(after: .milliseconds(100))])
        // Channels come and go while Redis is away: asked for on the next connection.
        XCTAssertEqual(machine.want(["n", "c:b"]), [])
        XCTAssertEqual(machine.retryDue(), [.connect])
        XCTAssertEqual(
            machine.connectionLost(reason: "connect refused"), [.failed("connect refused"), .retry(after: .milliseconds(200))])
        XCTAssertEqual(machine.failures, 2)
        XCTAssertEqual(machine.retryDue(), [.connect])
        XCTAssertEqual(machine.retryDue(), [])
        XCTAssertEqual(machine.connected(), [.send([["SUBSCRIBE", "c:b", "n"]])])
        XCTAssertEqual(machine.received(confirmation("subscribe", "c:b", 1)), [.linkUp])
        XCTAssertEqual(machine.failures, 0)
    }

    func testTheBackoffIsCapped() {
        var machine = RedisSubscriberStateMachine(handshake: [])
        _ = machine.start()
        var last: [RedisSubscriberStateMachine.Action] = []
        for _ in 0..<20 {
            last = machine.connectionLost(reason: "down")
            _ = machine.retryDue()
        }
        XCTAssertEqual(last.last, .retry(after: .seconds(5)))
    }

    func testOddRepliesAreReportedAndChangeNothing() {
        var machine = RedisSubscriberStateMachine(handshake: [])
        _ = machine.want(["n"])
        _ = machine.start()
        _ = machine.connected()
        _ = machine.received(confirmation("subscribe", "n", 1))
        XCTAssertEqual(machine.received(.error("ERR unknown command")), [.unexpected("Redis answered an error: ERR unknown command")])
        XCTAssertEqual(machine.received(.integer(3)), [.unexpected("a reply subscribe mode does not give: integer 3")])
        XCTAssertEqual(
            machine.received(.array([.bulk(Array("message".utf8)), .integer(1), .null])),
            [.unexpected("a reply subscribe mode does not give: an array of 3")])
        XCTAssertEqual(machine.received(.array([.bulk(Array("pong".utf8)), .bulk([])])), [])
        XCTAssertEqual(machine.phase, .linked)
    }

    func testStoppingClosesAndSilencesTheLink() {
        var machine = RedisSubscriberStateMachine(handshake: [])
        _ = machine.want(["n"])
        _ = machine.start()
        _ = machine.connected()
        XCTAssertEqual(machine.stop(), [.close("the node stops")])
        XCTAssertEqual(machine.connectionLost(reason: "the node stops"), [])
        XCTAssertEqual(machine.retryDue(), [])
        XCTAssertEqual(machine.start(), [])
    }

    func testAHeartbeatPingsAndALinkSilentForAWholeIntervalIsClosed() {
        var machine = RedisSubscriberStateMachine(handshake: [["AUTH", "pw"]])
        _ = machine.want(["n"])
        XCTAssertEqual(machine.heartbeatDue(seconds: 5), [])
        _ = machine.start()
        _ = machine.connected()
        // Linking: no PING (the handshake's replies are awaited), but silence still counts.
        XCTAssertEqual(machine.heartbeatDue(seconds: 5), [])
        XCTAssertEqual(machine.received(.status("OK")), [])
        XCTAssertEqual(machine.received(confirmation("subscribe", "n", 1)), [.linkUp])
        XCTAssertEqual(machine.heartbeatDue(seconds: 5), [.send([["PING"]])])
        XCTAssertEqual(machine.received(.array([.bulk(Array("pong".utf8)), .bulk([])])), [])
        XCTAssertEqual(machine.heartbeatDue(seconds: 5), [.send([["PING"]])])
        XCTAssertEqual(machine.heartbeatDue(seconds: 5), [.close("no reply within 5.0 s")])
    }

    func testAHandshakeThatNeverAnswersIsClosed() {
        var machine = RedisSubscriberStateMachine(handshake: [["AUTH", "pw"]])
        _ = machine.start()
        _ = machine.connected()
        XCTAssertEqual(machine.heartbeatDue(seconds: 5), [])
        XCTAssertEqual(machine.heartbeatDue(seconds: 5), [.close("no reply within 5.0 s")])
    }
}
