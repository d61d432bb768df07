import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// What a TLS client sends while its certificate is being verified waits in the gate, in order,
/// and goes on a turn of the loop after the answer; past 64 KiB the gate asks for no more.
final class TLSVerificationGateTests: XCTestCase {
    private let channel = EmbeddedChannel()
    private let gate = TLSVerificationGate()

    override func setUpWithError() throws {
        try channel.pipeline.syncOperations.addHandler(gate)
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    private func received() throws -> [String] {
        var chunks: [String] = []
        while let chunk = try channel.readInbound(as: ByteBuffer.self) { chunks.append(String(buffer: chunk)) }
        return chunks
    }

    func testBytesPassWhileOpen() throws {
        try channel.writeInbound(ByteBuffer(string: "a"))
        XCTAssertEqual(try received(), ["a"])
    }

    func testHeldBytesGoOnAfterTheAnswerInOrder() throws {
        let answer = channel.eventLoop.makePromise(of: Bool.self)
        gate.close()
        gate.open(after: answer.futureResult)
        try channel.writeInbound(ByteBuffer(string: "one"))
        try channel.writeInbound(ByteBuffer(string: "two"))
        XCTAssertEqual(try received(), [])
        answer.succeed(true)
        XCTAssertEqual(try received(), [], "the TLS handler takes the answer first")
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try received(), ["one", "two"])
        try channel.writeInbound(ByteBuffer(string: "three"))
        XCTAssertEqual(try received(), ["three"])
    }

    func testReadingStopsOnceTheLimitIsHeld() throws {
        final class ReadCounter: ChannelOutboundHandler {
            typealias OutboundIn = Never
            var reads = 0
            func read(context: ChannelHandlerContext) {
                reads += 1
                context.read()
            }
        }
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        let answer = channel.eventLoop.makePromise(of: Bool.self)
        gate.close()
        gate.open(after: answer.futureResult)
        channel.read()
        XCTAssertEqual(counter.reads, 1)
        try channel.writeInbound(ByteBuffer(repeating: 0x61, count: 64 * 1024))
        channel.read()
        XCTAssertEqual(counter.reads, 1, "no more reads while 64 KiB wait")
        answer.succeed(true)
        channel.embeddedEventLoop.run()
        XCTAssertEqual(counter.reads, 2, "the read asked for meanwhile happens on release")
        XCTAssertEqual(try received().joined().count, 64 * 1024)
    }
}
