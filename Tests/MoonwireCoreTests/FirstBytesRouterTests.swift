import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// Records what reaches it, then passes it on.
private final class Recorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    var reads: [String] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        reads.append(String(buffer: buffer))
        context.fireChannelRead(data)
    }
}

private struct ConfigureFailed: Error {}

/// What the router asked of the test's classifier and configuration.
private final class Log {
    var classified: [String] = []
    var configured: [String] = []
    let recorder = Recorder()
}

final class FirstBytesRouterTests: XCTestCase {
    /// A router that decides on the first line (up to "\n") and installs a `Recorder`.
    private func makeChannel(
        idleTimeout: Double = 5, headerTimeout: Double = 5, maxBytes: Int = 64, fail: Bool = false, decides: Bool = true
    ) throws -> (EmbeddedChannel, Log) {
        let log = Log()
        let channel = EmbeddedChannel()
        let router = FirstBytesRouter<String>(
            idleTimeout: idleTimeout, headerTimeout: headerTimeout, maxBytes: maxBytes,
            classify: { bytes in
                let text = String(buffer: bytes)
                log.classified.append(text)
                guard decides, let newline = text.firstIndex(of: "\n") else { return .needMore }
                return .decided(String(text[..<newline]))
            },
            configure: { choice, context in
                log.configured.append(choice)
                if fail { throw ConfigureFailed() }
                try context.pipeline.syncOperations.addHandler(log.recorder)
            })
        try channel.pipeline.syncOperations.addHandler(router)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, log)
    }

    private func routerIsGone(_ channel: EmbeddedChannel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: FirstBytesRouter<String>.self)) == nil
    }

    private func inbound(_ channel: EmbeddedChannel) throws -> [String] {
        var result: [String] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { result.append(String(buffer: buffer)) }
        return result
    }

    func testBytesOneAtATimeUntilTheClassifierDecides() throws {
        let (channel, log) = try makeChannel()
        defer { _ = try? channel.finish() }
        for (index, byte) in "HELLO".utf8.enumerated() {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            XCTAssertEqual(log.configured, [], "decided after \(index + 1) bytes")
            XCTAssertEqual(try inbound(channel), [], "forwarded before the decision")
            XCTAssertFalse(routerIsGone(channel))
        }
        try channel.writeInbound(ByteBuffer(string: "\n"))
        // The classifier saw the whole buffer each time, not only the newest byte.
        XCTAssertEqual(log.classified, ["H", "HE", "HEL", "HELL", "HELLO", "HELLO\n"])
        XCTAssertEqual(log.configured, ["HELLO"])
        // All buffered bytes in one read.
        XCTAssertEqual(log.recorder.reads, ["HELLO\n"])
        XCTAssertEqual(try inbound(channel), ["HELLO\n"])
        XCTAssertTrue(routerIsGone(channel))
    }

    func testLaterReadsGoStraightThrough() throws {
        let (channel, log) = try makeChannel()
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "HE"))
        try channel.writeInbound(ByteBuffer(string: "LLO\nextra"))
        XCTAssertEqual(log.recorder.reads, ["HELLO\nextra"])
        try channel.writeInbound(ByteBuffer(string: "second"))
        try channel.writeInbound(ByteBuffer(string: "\nthird\n"))
        XCTAssertEqual(log.recorder.reads, ["HELLO\nextra", "second", "\nthird\n"])
        XCTAssertEqual(try inbound(channel), ["HELLO\nextra", "second", "\nthird\n"])
        // Classified and configured only once.
        XCTAssertEqual(log.classified, ["HE", "HELLO\nextra"])
        XCTAssertEqual(log.configured, ["HELLO"])
        XCTAssertTrue(routerIsGone(channel))
    }

    func testDecisionOnTheFirstRead() throws {
        let (channel, log) = try makeChannel()
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "GO\n"))
        XCTAssertEqual(log.configured, ["GO"])
        XCTAssertEqual(log.recorder.reads, ["GO\n"])
        XCTAssertTrue(routerIsGone(channel))
        XCTAssertTrue(channel.isActive)
    }

    func testUpToMaxBytesWithoutADecisionStaysOpen() throws {
        let (channel, log) = try makeChannel(maxBytes: 8, decides: false)
        defer { _ = try? channel.finish() }
        for byte in "12345678".utf8 { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        XCTAssertTrue(channel.isActive)
        XCTAssertEqual(log.classified.count, 8)
        try channel.writeInbound(ByteBuffer(string: "9"))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(log.configured, [])
        XCTAssertEqual(try inbound(channel), [])
    }

    func testMoreThanMaxBytesInOneReadCloses() throws {
        let (channel, log) = try makeChannel(maxBytes: 8, decides: false)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: String(repeating: "x", count: 100)))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(log.configured, [])
        XCTAssertEqual(try inbound(channel), [])
    }

    func testADecisionPastMaxBytesStillRoutes() throws {
        // maxBytes bounds waiting, not the size of the read that decides.
        let (channel, log) = try makeChannel(maxBytes: 4)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "LONG LINE\n"))
        XCTAssertTrue(channel.isActive)
        XCTAssertEqual(log.configured, ["LONG LINE"])
        XCTAssertEqual(log.recorder.reads, ["LONG LINE\n"])
    }

    func testIdleTimeoutClosesASilentChannel() throws {
        let (channel, log) = try makeChannel(idleTimeout: 3, headerTimeout: 1)
        defer { _ = try? channel.finish() }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2999))
        XCTAssertTrue(channel.isActive, "silence before the first byte is idle time, not a slow request")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(log.configured, [])
    }

    func testHeaderTimeoutCountsFromTheFirstByte() throws {
        let (channel, log) = try makeChannel(idleTimeout: 10, headerTimeout: 2)
        defer { _ = try? channel.finish() }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(5000))
        try channel.writeInbound(ByteBuffer(string: "s"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1000))
        // Bytes that decide nothing do not extend the deadline.
        try channel.writeInbound(ByteBuffer(string: "low"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(log.configured, [])
        XCTAssertEqual(try inbound(channel), [])
    }

    func testFractionalTimeout() throws {
        let (channel, _) = try makeChannel(idleTimeout: 0.25)
        defer { _ = try? channel.finish() }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(249))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testTimerIsCancelledOnceRouted() throws {
        let (channel, log) = try makeChannel(idleTimeout: 2, headerTimeout: 2)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "OK\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        XCTAssertTrue(channel.isActive)
        XCTAssertEqual(log.configured, ["OK"])
    }

    func testConfigureErrorIsReportedAndCloses() throws {
        let (channel, log) = try makeChannel(fail: true)
        defer { _ = try? channel.finish() }
        XCTAssertThrowsError(try channel.writeInbound(ByteBuffer(string: "BAD\n"))) { error in
            XCTAssertTrue(error is ConfigureFailed, "\(error)")
        }
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(log.configured, ["BAD"])
        XCTAssertEqual(try inbound(channel), [])
    }
}
