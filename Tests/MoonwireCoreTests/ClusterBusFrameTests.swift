import NIOCore
import XCTest

@testable import MoonwireCore

/// The bus's wire format: every message survives the trip, the frames stay small, and bytes
/// that are not a frame are refused with a reason (anyone can PUBLISH on a Redis channel).
final class ClusterBusFrameTests: XCTestCase {
    private func roundTrip(_ message: ClusterBusMessage, file: StaticString = #filePath, line: UInt = #line) throws {
        let frame = ClusterBusFrame(origin: 0x0123_4567_89AB_CDEF, message: message)
        XCTAssertEqual(try ClusterBusFrame(decoding: frame.encoded()), frame, file: file, line: line)
    }

    func testEveryMessageSurvivesTheTrip() throws {
        try roundTrip(.broadcast(ClusterBroadcast(payload: ByteBuffer(string: "hello"))))
        try roundTrip(
            .broadcast(
                ClusterBroadcast(
                    payload: ByteBuffer(bytes: [0, 1, 255]), binary: true, subprotocol: "chat.v1", guids: ["a", "b"], exclude: ["c"])))
        try roundTrip(.broadcast(ClusterBroadcast(payload: ByteBuffer(), guids: [])))
        try roundTrip(.write(guid: "5d3c-guid", payload: ByteBuffer(string: "to you"), binary: false))
        try roundTrip(.write(guid: "g", payload: ByteBuffer(bytes: [9, 9]), binary: true))
        try roundTrip(.disconnectAll(code: 1001, reason: "going away"))
        try roundTrip(.disconnectAll(code: 4000, reason: ""))
        let long = String(repeating: "x", count: 70_000)
        try roundTrip(.broadcast(ClusterBroadcast(payload: ByteBuffer(string: long), subprotocol: long, exclude: [long, "y"])))
    }

    func testAShortBroadcastCostsADozenBytes() {
        let frame = ClusterBusFrame(origin: 7, message: .broadcast(ClusterBroadcast(payload: ByteBuffer(string: "hi"))))
        // version, kind, origin (8), flags, empty exclude list, payload
        XCTAssertEqual(Array(frame.encoded().readableBytesView), [1, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0] + Array("hi".utf8))
    }

    func testBytesThatAreNotAFrameAreRefusedWithAReason() {
        func refusal(_ bytes: [UInt8]) -> String? {
            do {
                _ = try ClusterBusFrame(decoding: ByteBuffer(bytes: bytes))
                return nil
            } catch {
                return error.description
            }
        }
        let origin: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 1]
        XCTAssertEqual(refusal([]), "an empty message")
        XCTAssertEqual(refusal(Array("hello".utf8)), "version 104, this node speaks 1 (a node of another Moonwire release?)")
        XCTAssertEqual(refusal([2, 1] + origin + [0, 0]), "version 2, this node speaks 1 (a node of another Moonwire release?)")
        XCTAssertEqual(refusal([1, 1, 0, 0]), "cut short in its header")
        XCTAssertEqual(refusal([1, 9] + origin), "unknown kind 9")
        XCTAssertEqual(refusal([1, 1] + origin), "cut short in its flags")
        XCTAssertEqual(refusal([1, 1] + origin + [0x80]), "unknown flags 128")
        XCTAssertEqual(refusal([1, 1] + origin + [0]), "cut short in a length")
        XCTAssertEqual(refusal([1, 1] + origin + [2, 100]), "a length of 100 with 0 bytes left")
        XCTAssertEqual(refusal([1, 1] + origin + [0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), "a length longer than 5 bytes")
        XCTAssertEqual(refusal([1, 1] + origin + [0, 1, 2, 0xC3, 0x28]), "a string that is not UTF-8")
        XCTAssertEqual(refusal([1, 2] + origin + [1, 5, 65]), "a length of 5 with 1 bytes left")
        XCTAssertEqual(refusal([1, 3] + origin + [3]), "cut short in its close code")
        XCTAssertEqual(refusal([1, 1] + origin + [0, 0, 0xC3]), "a text message that is not UTF-8")
        XCTAssertEqual(refusal([1, 2] + origin + [0, 1, 65, 0xFF]), "a text message that is not UTF-8")
        XCTAssertNil(refusal([1, 1] + origin + [1, 0, 0xC3]))      // binary: any bytes
    }

    func testGarbageNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<40, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if bytes.count > 2 {
                bytes[0] = 1
                bytes[1] = UInt8.random(in: 1...3, using: &generator)
            }
            _ = try? ClusterBusFrame(decoding: ByteBuffer(bytes: bytes))
        }
    }

    func testTopicsCarryTheDatabaseAndTheChannel() {
        let topics = ClusterTopics(database: 3)
        XCTAssertEqual(topics.nodes, "moonwire:3:nodes")
        XCTAssertEqual(topics.channel("room:1"), "moonwire:3:channel:room:1")
        XCTAssertEqual(topics.channelName(of: "moonwire:3:channel:room:1"), "room:1")
        XCTAssertNil(topics.channelName(of: topics.nodes))
        XCTAssertNil(topics.channelName(of: "moonwire:4:channel:room:1"))
    }
}
