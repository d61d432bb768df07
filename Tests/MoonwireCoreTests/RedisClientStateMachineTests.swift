import NIOCore
import XCTest

@testable import MoonwireCore

/// The Redis client's states: queueing while connecting, the handshake, replies in order,
/// failures and the back-off.
final class RedisClientStateMachineTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testCallsQueueWhileConnectingAndGoOutAfterTheHandshake() {
        var machine = RedisClientStateMachine()
        XCTAssertEqual(machine.submit(id: 1, now: start), .connect)
        XCTAssertEqual(machine.submit(id: 2, now: start), .queued)
        XCTAssertEqual(machine.connected(handshake: ["AUTH", "SELECT"]), [1, 2])
        XCTAssertEqual(machine.submit(id: 3, now: start), .send)
        XCTAssertEqual(machine.pending, 5)
        XCTAssertEqual(machine.received(.status("OK")), .handshakeStep)
        XCTAssertEqual(machine.received(.status("OK")), .handshakeStep)
        XCTAssertEqual(machine.received(.integer(1)), .complete(id: 1, .integer(1)))
        XCTAssertEqual(machine.received(.error("ERR x")), .complete(id: 2, .error("ERR x")))
        XCTAssertTrue(machine.isWaiting(3))
        XCTAssertEqual(machine.received(.null), .complete(id: 3, .null))
        XCTAssertFalse(machine.isWaiting(3))
        XCTAssertEqual(machine.pending, 0)
        XCTAssertEqual(machine.failures, 0)
    }

    func testAFailedHandshakeClosesTheConnection() {
        var machine = RedisClientStateMachine()
        _ = machine.submit(id: 1, now: start)
        _ = machine.connected(handshake: ["AUTH"])
        XCTAssertEqual(machine.received(.error("WRONGPASS invalid password")),
                       .close(reason: "AUTH failed: WRONGPASS invalid password"))
        XCTAssertEqual(machine.connectionLost(reason: "AUTH failed", now: start), [1])
    }

    func testAReplyNobodyAskedForClosesTheConnection() {
        var machine = RedisClientStateMachine()
        _ = machine.submit(id: 1, now: start)
        _ = machine.connected(handshake: [])
        XCTAssertEqual(machine.received(.status("OK")), .complete(id: 1, .status("OK")))
        XCTAssertEqual(machine.received(.status("OK")), .close(reason: "a reply that no command asked for"))
    }

    func testALostConnectionFailsEveryWaitingCallAndBacksOff() {
        var machine = RedisClientStateMachine()
        _ = machine.submit(id: 1, now: start)
        _ = machine.connected(handshake: [])
        _ = machine.submit(id: 2, now: start)
        XCTAssertEqual(machine.connectionLost(reason: "the connection closed", now: start), [1, 2])
        XCTAssertEqual(machine.pending, 0)
        guard case .fail(let message) = machine.submit(id: 3, now: start + .milliseconds(50)) else {
            return XCTFail("a call during the back-off fails at once")
        }
        XCTAssertEqual(message, "the connection closed (next try in 0.1 s)")
        XCTAssertEqual(machine.submit(id: 4, now: start + .milliseconds(100)), .connect)
        XCTAssertEqual(machine.connectionLost(reason: "refused", now: start + .milliseconds(100)), [4])
        XCTAssertEqual(machine.phase, .waitingToRetry(until: start + .milliseconds(300)))
    }

    func testTheBackoffDoublesUpToItsMaximum() {
        let milliseconds = (1...10).map { RedisClientStateMachine.backoff(after: $0).nanoseconds / 1_000_000 }
        XCTAssertEqual(milliseconds, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000])
        XCTAssertEqual(RedisClientStateMachine.backoff(after: 1000), .seconds(5))
    }

    func testEndingTheBackoffLetsTheNextCallConnect() {
        var machine = RedisClientStateMachine()
        _ = machine.submit(id: 1, now: start)
        _ = machine.connectionLost(reason: "refused", now: start)
        XCTAssertEqual(machine.submit(id: 2, now: start), .fail("refused (next try in 0.1 s)"))
        machine.endBackoff()
        XCTAssertEqual(machine.submit(id: 3, now: start), .connect)
        machine.endBackoff()
        XCTAssertEqual(machine.phase, .connecting)
    }
}
