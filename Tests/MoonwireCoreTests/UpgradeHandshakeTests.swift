import MoonwireCore
import XCTest

final class UpgradeHandshakeTests: XCTestCase {
    func testTheOldProcessDrainsOnlyOnceTheNewOneSaysReady() {
        var handshake = UpgradeHandshake()
        XCTAssertEqual(handshake.requested(), .spawn)
        handshake.spawned(pid: 42)
        XCTAssertEqual(handshake.state, .waiting(pid: 42))
        XCTAssertEqual(handshake.received("starting"), .ignore("unexpected message from the new process: starting"))
        XCTAssertEqual(handshake.state, .waiting(pid: 42))
        XCTAssertEqual(handshake.received("ready"), .drain)
        XCTAssertEqual(handshake.state, .handedOver)
        XCTAssertEqual(handshake.requested(), .ignore("this process has handed over and is draining"))
    }

    func testASecondRequestWhileOneIsUnderWayIsIgnored() {
        var handshake = UpgradeHandshake()
        _ = handshake.requested()
        handshake.spawned(pid: 7)
        XCTAssertEqual(handshake.requested(), .ignore("an upgrade is already under way (process 7)"))
    }

    func testAFailedStartKeepsServingAndAllowsAnotherUpgrade() {
        var handshake = UpgradeHandshake()
        _ = handshake.requested()
        XCTAssertEqual(
            handshake.spawnFailed("No such file or directory"),
            .keepServing(reason: "cannot start the new binary: No such file or directory", stop: nil))
        XCTAssertEqual(handshake.state, .serving)
        XCTAssertEqual(handshake.requested(), .spawn)
    }

    func testANewProcessThatExitsOrStaysSilentLeavesTheOldOneServing() {
        var handshake = UpgradeHandshake()
        _ = handshake.requested()
        handshake.spawned(pid: 9)
        XCTAssertEqual(
            handshake.pipeClosed(exitStatus: 1), .keepServing(reason: "the new process exited with status 1 before it was serving", stop: nil))
        XCTAssertEqual(handshake.state, .serving)
        _ = handshake.requested()
        handshake.spawned(pid: 10)
        XCTAssertEqual(handshake.timedOut(after: 30), .keepServing(reason: "the new process was not serving within 30.0 s", stop: 10))
        XCTAssertEqual(handshake.state, .serving)
        XCTAssertEqual(handshake.received("ready"), .ignore("a message from no upgrade under way"))
    }

    func testTheListenVariableRoundTripsAndRefusesWhatIsMalformed() {
        let descriptors: [String: Int32] = ["127.0.0.1:8080": 5, "[::1]:8443": 6]
        let value = UpgradeHandshake.listenValue(descriptors)
        XCTAssertEqual(value, "5=127.0.0.1:8080,6=[::1]:8443")
        XCTAssertEqual(UpgradeHandshake.parseListenValue(value), descriptors)
        XCTAssertEqual(UpgradeHandshake.parseListenValue(""), [:])
        for bad in ["x=127.0.0.1:80", "1=127.0.0.1:80", "5=", "5", "5=a:1,6=a:1"] {
            XCTAssertNil(UpgradeHandshake.parseListenValue(bad), bad)
        }
    }
}
