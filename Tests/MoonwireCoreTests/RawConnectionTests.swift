import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// What a raw connection handed out.
private final class Outcomes {
    var firstBytes: [String] = []
    var reads: [String] = []
    var writes: [TCPSocketError?] = []

    func record(_ result: RawConnection.ReadResult) {
        switch result {
        case .data(let bytes): reads.append(String(buffer: bytes))
        case .end: reads.append("<end>")
        case .failed(let error): reads.append("<\(error)>")
        }
    }
}

final class RawConnectionTests: XCTestCase {
    private func makeConnection(idleTimeout: Double = 30) throws -> (EmbeddedChannel, RawConnection, Outcomes) {
        let outcomes = Outcomes()
        let channel = EmbeddedChannel()
        let connection = RawConnection(channel: channel, idleTimeout: idleTimeout) { _, first in
            outcomes.firstBytes.append(String(buffer: first))
        }
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "HELO\r\n"))
        return (channel, connection, outcomes)
    }

    func testTheFirstBytesGoToTheDelegateNotToReads() throws {
        let (channel, connection, outcomes) = try makeConnection()
        defer { _ = try? channel.finish() }
        XCTAssertEqual(outcomes.firstBytes, ["HELO\r\n"])
        connection.read(max: .max, timeout: nil, completion: outcomes.record)
        XCTAssertEqual(outcomes.reads, [], "the first bytes are not read again")
        try channel.writeInbound(ByteBuffer(string: "PING\n"))
        XCTAssertEqual(outcomes.reads, ["PING\n"])
    }

    func testAReadTakesAtMostNBytesOfWhatIsBuffered() throws {
        let (channel, connection, outcomes) = try makeConnection()
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "abcdef"))
        connection.read(max: 4, timeout: nil, completion: outcomes.record)
        connection.read(max: 4, timeout: nil, completion: outcomes.record)
        XCTAssertEqual(outcomes.reads, ["abcd", "ef"])
    }

    func testBytesBeforeThePeersCloseAreReadThenTheEnd() throws {
        let (channel, connection, outcomes) = try makeConnection()
        try channel.writeInbound(ByteBuffer(string: "last words"))
        _ = try? channel.finish()
        connection.read(max: .max, timeout: nil, completion: outcomes.record)
        connection.read(max: .max, timeout: nil, completion: outcomes.record)
        XCTAssertEqual(outcomes.reads, ["last words", "<end>"])
    }

    func testAfterTheClientsHalfCloseReadsEndAndWritesGoOn() throws {
        let (channel, connection, outcomes) = try makeConnection()
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "bye"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        connection.read(max: .max, timeout: nil, completion: outcomes.record)
        connection.read(max: .max, timeout: nil, completion: outcomes.record)
        XCTAssertEqual(outcomes.reads, ["bye", "<end>"])
        connection.write(ByteBuffer(string: "answer"), timeout: nil) { outcomes.writes.append($0) }
        XCTAssertEqual(outcomes.writes, [nil])
        XCTAssertTrue(channel.isActive)
    }

    func testClosingHereEndsAPendingReadAndFailsWrites() throws {
        let (channel, connection, outcomes) = try makeConnection()
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "unread"))
        connection.read(max: 2, timeout: nil, completion: outcomes.record)
        connection.close()
        XCTAssertFalse(channel.isActive)
        connection.read(max: .max, timeout: nil, completion: outcomes.record)
        XCTAssertEqual(outcomes.reads, ["un", "<end>"], "what was not taken is dropped")
        connection.write(ByteBuffer(string: "x"), timeout: nil) { outcomes.writes.append($0) }
        XCTAssertEqual(outcomes.writes, [.closed])
    }

    func testAReadTimeoutLeavesTheConnectionOpen() throws {
        let (channel, connection, outcomes) = try makeConnection()
        defer { _ = try? channel.finish() }
        connection.read(max: .max, timeout: .seconds(2), completion: outcomes.record)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertEqual(outcomes.reads, ["<timeout>"])
        XCTAssertTrue(channel.isActive)
        XCTAssertFalse(connection.isReading)
    }

    func testAWriteCompletesOnceWritten() throws {
        let (channel, connection, outcomes) = try makeConnection()
        defer { _ = try? channel.finish() }
        connection.write(ByteBuffer(string: "PONG\r\n"), timeout: .seconds(5)) { outcomes.writes.append($0) }
        XCTAssertEqual(outcomes.writes, [nil])
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "PONG\r\n")
        XCTAssertFalse(connection.isWriting)
    }

    func testAnUnusedConnectionClosesAfterTheIdleTimeoutAndAWaitingOneDoesNot() throws {
        let (channel, connection, outcomes) = try makeConnection(idleTimeout: 3)
        defer { _ = try? channel.finish() }
        connection.read(max: .max, timeout: nil, completion: outcomes.record)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        XCTAssertTrue(channel.isActive, "a pending read is not idleness")
        try channel.writeInbound(ByteBuffer(string: "x"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2999))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
    }
}
