import Logging
import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

final class TLSHandshakeTimeoutTests: XCTestCase {
    private func makeChannel() throws -> (EmbeddedChannel, TLSHandshakeTimeout) {
        let channel = EmbeddedChannel()
        let timeout = TLSHandshakeTimeout(timeout: 10, logger: Logger(label: "test"))
        try channel.pipeline.syncOperations.addHandler(timeout)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, timeout)
    }

    func testAHandshakeNotOverInTimeClosesTheConnection() throws {
        let (channel, _) = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "a ClientHello, and then nothing"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_999))
        XCTAssertTrue(channel.isActive, "bytes that arrive do not extend the handshake's time")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testACompletedHandshakeRemovesTheTimer() throws {
        let (channel, timeout) = try makeChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        try channel.pipeline.syncOperations.removeHandler(timeout).wait()
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
        XCTAssertTrue(channel.isActive)
        _ = try channel.finish()
    }
}
