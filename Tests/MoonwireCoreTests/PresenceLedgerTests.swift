import XCTest

@testable import MoonwireCore

/// Presence heartbeats: a whole rewrite first, then only the changes; a rewrite again after a
/// failure or a hash that Redis lost; the entries as JSON and read back.
final class PresenceLedgerTests: XCTestCase {
    private func text(_ commands: [[[UInt8]]]) -> [String] {
        commands.map { $0.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") }
    }

    /// Replies as Redis gives them to `beat`: OK and QUEUED in a MULTI, then EXEC's array.
    private func replies(_ beat: PresenceBeat, first: RedisReply = .integer(1)) -> [RedisReply] {
        guard beat.isFull else { return [first] + Array(repeating: .integer(1), count: beat.commands.count - 1) }
        let queued = beat.commands.count - 2
        return [.status("OK")] + Array(repeating: .status("QUEUED"), count: queued)
            + [.array(Array(repeating: .integer(1), count: queued))]
    }

    func testTheFirstBeatRewritesTheHashThenOnlyChangesGo() {
        var ledger = PresenceLedger(node: "n1", ttlMilliseconds: 6000)
        let full = ledger.beat(["a": Array("A".utf8), "b": Array("B".utf8)])
        XCTAssertEqual(
            text(full.commands),
            [
                "MULTI", "DEL moonwire:presence:node:n1", "HSET moonwire:presence:node:n1 a A b B",
                "PEXPIRE moonwire:presence:node:n1 6000", "SADD moonwire:presence:nodes n1", "EXEC",
            ])
        ledger.completed(full, replies: replies(full))
        XCTAssertFalse(ledger.needsFull)

        let quiet = ledger.beat(["a": Array("A".utf8), "b": Array("B".utf8)])
        XCTAssertEqual(text(quiet.commands), ["PEXPIRE moonwire:presence:node:n1 6000", "SADD moonwire:presence:nodes n1"])
        ledger.completed(quiet, replies: replies(quiet))

        let changed = ledger.beat(["b": Array("B2".utf8), "c": Array("C".utf8)])
        XCTAssertEqual(
            text(changed.commands),
            [
                "PEXPIRE moonwire:presence:node:n1 6000", "HDEL moonwire:presence:node:n1 a",
                "HSET moonwire:presence:node:n1 b B2 c C", "PEXPIRE moonwire:presence:node:n1 6000",
                "SADD moonwire:presence:nodes n1",
            ])
        ledger.completed(changed, replies: replies(changed))
        XCTAssertEqual(ledger.stored, ["b": Array("B2".utf8), "c": Array("C".utf8)])
    }

    func testAFailureOrALostHashMakesTheNextBeatARewrite() {
        var ledger = PresenceLedger(node: "n1", ttlMilliseconds: 6000)
        let full = ledger.beat(["a": Array("A".utf8)])
        ledger.completed(full, replies: replies(full))
        let next = ledger.beat(["a": Array("A".utf8)])
        ledger.completed(next, replies: replies(next, first: .integer(0)))  // the hash was gone
        XCTAssertTrue(ledger.needsFull)
        XCTAssertEqual(text(ledger.beat(["a": Array("A".utf8)]).commands).first, "MULTI")

        let again = ledger.beat(["a": Array("A".utf8)])
        ledger.completed(again, replies: replies(again))
        XCTAssertFalse(ledger.needsFull)
        let failing = ledger.beat([:])
        ledger.completed(failing, replies: [.integer(1), .error("ERR nope"), .integer(1)])
        XCTAssertTrue(ledger.needsFull)
        let aborted = ledger.beat([:])
        ledger.completed(aborted, replies: [.status("OK"), .status("QUEUED"), .status("QUEUED"), .null])
        XCTAssertTrue(ledger.needsFull)
        ledger.failed()
        XCTAssertEqual(ledger.stored, [:])
    }

    func testABigChangeGoesInBatches() {
        var ledger = PresenceLedger(node: "n", ttlMilliseconds: 6000)
        let many = Dictionary(uniqueKeysWithValues: (0..<1200).map { ("g\($0)", Array("x".utf8)) })
        let beat = ledger.beat(many)
        XCTAssertEqual(beat.commands.filter { $0[0] == Array("HSET".utf8) }.map { ($0.count - 2) / 2 }, [512, 512, 176])
        ledger.completed(beat, replies: replies(beat))
        let gone = ledger.beat([:])
        XCTAssertEqual(gone.commands.filter { $0[0] == Array("HDEL".utf8) }.map { $0.count - 2 }, [512, 512, 176])
    }

    func testEntriesAreJSONAndReadBack() {
        let entry = PresenceEntry(guid: "g\"1", remoteIP: "::1", subprotocol: "chat", channels: ["a\\b", "c\n"])
        let json = String(decoding: entry.json, as: UTF8.self)
        XCTAssertEqual(json, #"{"guid":"g\"1","remote_ip":"::1","protocol":"chat","channels":["a\\b","c\u000a"]}"#)
        let reply = RedisReply.array([
            .bulk(Array("n2".utf8)), .array([.bulk(entry.json), .bulk(Array("not json".utf8))]),
            .bulk(Array("n3".utf8)), .array([.bulk(PresenceEntry(guid: "h", remoteIP: "10.0.0.1", subprotocol: nil, channels: []).json)]),
        ])
        var expected = entry
        expected.node = "n2"
        XCTAssertEqual(
            ClusterPresence.entries(from: reply),
            [expected, PresenceEntry(guid: "h", remoteIP: "10.0.0.1", subprotocol: nil, channels: [], node: "n3")])
        XCTAssertEqual(ClusterPresence.entries(from: .null), [])
    }
}
