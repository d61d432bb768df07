import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// Stands for a socket whose client does not read: writes go out of the channel but their
/// promises wait for the test; counts the reads that get past the frame handler.
private final class HeldWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private var promises: [EventLoopPromise<Void>?] = []
    private(set) var reads = 0

    var held: Int { promises.count }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promises.append(promise)
        context.write(data, promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    /// The client reads `count` of the frames written.
    func complete(_ count: Int) {
        let done = promises.prefix(count)
        promises.removeFirst(min(count, promises.count))
        for promise in done { promise?.succeed() }
    }
}

private final class SilentDelegate: ServerDelegate {
    func handle(_ request: HTTPRequest, responder: HTTPResponder) {}
}

/// The frame handler holds back the reading while the send queue is half full and takes it up
/// again once the queue is down to a quarter: a flood of pings gets as many pongs as half the
/// queue holds, and the rest waits, unparsed, until the client reads. (The channel says it
/// takes no more, as a socket whose client does not read soon does: while it takes more, small
/// frames are counted off once flushed, without waiting for their writes.)
final class WebSocketBackPressureTests: XCTestCase {
    private let channel = EmbeddedChannel()
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let writes = HeldWrites()

    override func setUpWithError() throws {
        pool.start()
        var configuration = ServerConfiguration()
        configuration.webSocket.sendQueueLimit = 10 * WebSocketSendQueue.cost(ofPayload: 4)
        let environment = ConnectionEnvironment.forTests(delegate: SilentDelegate(), configuration: configuration, pool: pool)
        try channel.pipeline.syncOperations.addHandler(writes)
        try channel.pipeline.syncOperations.addHandler(
            WebSocketFrameHandler.forTests(environment: environment, eventLoop: channel.eventLoop))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
        try pool.syncShutdownGracefully()
    }

    private func pongsWritten() throws -> Int {
        let opcodes = try channel.serverOpcodesWritten()
        XCTAssertEqual(opcodes, Array(repeating: .pong, count: opcodes.count))
        return opcodes.count
    }

    private func pingFlood() -> ByteBuffer {
        var flood = ByteBuffer()
        for _ in 0..<20 {
            var ping = WebSocketFrame.client(.ping, "ping").wire
            flood.writeBuffer(&ping)
        }
        return flood
    }

    func testWhileTheChannelTakesMoreSmallFramesAreCountedOffOnceFlushed() throws {
        try channel.writeInbound(pingFlood())
        XCTAssertEqual(try pongsWritten(), 20, "every ping answered at once")
        channel.read()
        XCTAssertEqual(writes.reads, 1, "the queue is empty: the read goes on")
    }

    func testAPingFloodIsAnsweredAsTheClientReads() throws {
        channel.isWritable = false
        var flood = ByteBuffer()
        for _ in 0..<20 {
            var ping = WebSocketFrame.client(.ping, "ping").wire
            flood.writeBuffer(&ping)
        }
        try channel.writeInbound(flood)
        XCTAssertEqual(try pongsWritten(), 5, "half the queue")
        channel.read()
        XCTAssertEqual(writes.reads, 0, "the read waits while the queue is half full")

        writes.complete(2)
        XCTAssertEqual(try pongsWritten(), 0, "3 of 10 still queued: more than a quarter")
        writes.complete(1)
        XCTAssertEqual(try pongsWritten(), 3, "down to a quarter: the pings read meanwhile are answered")
        XCTAssertEqual(writes.reads, 0, "half full again")

        var answered = 8
        for _ in 0..<20 where writes.held > 0 {
            writes.complete(writes.held)
            answered += try pongsWritten()
        }
        XCTAssertEqual(answered, 20, "every ping answered")
        XCTAssertEqual(writes.held, 0)
        XCTAssertEqual(writes.reads, 1, "the held read goes on once the queue drained")
        channel.read()
        XCTAssertEqual(writes.reads, 2)
    }
}

/// Sends `burst` 1-byte messages back for each message it hears.
private final class BurstDelegate: ServerDelegate {
    var burst = 1

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {}

    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {
        for _ in 0..<burst { socket.send(text: ByteBuffer(string: "x")) }
    }
}

/// Counts the flushes that leave the frame handler.
private final class FlushCount: ChannelOutboundHandler {
    typealias OutboundIn = WebSocketFrame
    private(set) var flushes = 0

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }
}

/// What the handling of a read sends is flushed once at its end, and a script's burst every
/// 64 KiB of queue cost on the way, so a client that reads takes it as it goes.
final class WebSocketFlushTests: XCTestCase {
    private let channel = EmbeddedChannel()
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let delegate = BurstDelegate()
    private let flushes = FlushCount()

    override func setUpWithError() throws {
        pool.start()
        let environment = ConnectionEnvironment.forTests(delegate: delegate, pool: pool)
        try channel.pipeline.syncOperations.addHandler(flushes)
        try channel.pipeline.syncOperations.addHandler(
            WebSocketFrameHandler.forTests(environment: environment, eventLoop: channel.eventLoop))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
        try pool.syncShutdownGracefully()
    }

    func testEchoesOfOneReadAreOneFlush() throws {
        var read = ByteBuffer()
        for _ in 0..<10 {
            var message = WebSocketFrame.client(.text, "hi").wire
            read.writeBuffer(&message)
        }
        let before = flushes.flushes
        try channel.writeInbound(read)
        XCTAssertEqual(flushes.flushes - before, 1)
    }

    func testABurstIsFlushedOnTheWay() throws {
        delegate.burst = 400
        let before = flushes.flushes
        try channel.writeInbound(WebSocketFrame.client(.text, "go").wire)
        let perFlush = 64 * 1024 / WebSocketSendQueue.cost(ofPayload: 1) + 1
        XCTAssertEqual(flushes.flushes - before, 400 / perFlush + 1, "every \(perFlush) messages, and once at the end")
    }
}
