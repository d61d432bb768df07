import NIOCore
import NIOEmbedded
import NIOPosix
import XCTest

@testable import MoonwireCore

/// Nothing references the pool or a streamed exchange's sink weakly (a weak reference would
/// make every retain of them slow, see OutboundHTTP1Pool.swift): the strong references that
/// replaced the weak ones must let them go once their exchange ended, however it ended.
final class OutboundLifetimeTests: XCTestCase {
    /// A streamed exchange's sink that records how its answer ended.
    private final class Sink: OutboundResponseSink {
        var ended = false
        var failure: OutboundHTTPFailure?
        func responseInterim(_ head: OutboundResponseHead) {}
        func responseHead(_ head: OutboundResponseHead) {}
        func responseBody(_ part: ByteBuffer) {}
        func responseEnded(trailers: HTTP1TrailerSection) { ended = true }
        func responseFailed(_ failure: OutboundHTTPFailure) { self.failure = failure }
        func responseReadComplete() {}
        func upstreamWritable() {}
    }

    /// Sends a streamed request on a connection in an embedded channel, runs `then` with it,
    /// and returns whether the sink was freed after.
    private func sinkIsFreed(_ then: (OutboundHTTP1Connection, EmbeddedChannel, Sink) throws -> Void) throws -> Bool {
        let connection = OutboundHTTP1Connection(target: "upstream.test")
        let channel = EmbeddedChannel(handler: connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        weak var probe: Sink?
        try {
            let sink = Sink()
            probe = sink
            connection.send(ByteBuffer(string: "GET / HTTP/1.1\r\nhost: upstream.test\r\n\r\n"), isHead: false, streamingTo: sink)
            try then(connection, channel, sink)
        }()
        return probe == nil
    }

    func testAConnectionLetsItsSinkGoWhenTheAnswerEnds() throws {
        XCTAssertTrue(
            try sinkIsFreed { _, channel, sink in
                try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel"))
                XCTAssertFalse(sink.ended)
                try channel.writeInbound(ByteBuffer(string: "lo"))
                XCTAssertTrue(sink.ended)
            })
    }

    func testAConnectionLetsItsSinkGoWhenItCloses() throws {
        XCTAssertTrue(
            try sinkIsFreed { _, channel, sink in
                try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel"))
                try channel.close().wait()
                XCTAssertNotNil(sink.failure)
            })
    }

    func testAConnectionLetsItsSinkGoWhenTheSinkAbandonsIt() throws {
        XCTAssertTrue(try sinkIsFreed { connection, _, _ in connection.abandon() })
    }

    func testAConnectionLetsItsSinkGoWhenTheExchangeFails() throws {
        XCTAssertTrue(
            try sinkIsFreed { connection, _, sink in
                connection.fail(.timeout(seconds: 1))
                XCTAssertNotNil(sink.failure)
            })
    }

    /// An upstream answering every read with one short answer.
    private final class Hello: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")), promise: nil)
        }
    }

    private final class Exchange: OutboundHTTP1Exchange {
        let promise: EventLoopPromise<Int>
        init(to url: OutboundURL, _ promise: EventLoopPromise<Int>) {
            self.promise = promise
            super.init(
                .init(bytes: ByteBuffer(string: "GET / HTTP/1.1\r\nhost: upstream\r\n\r\n"), method: "GET"), to: url,
                deadline: .now() + .seconds(10), seconds: 10, connectTimeout: .seconds(10), maxBodySize: 100)
        }
        override func answered(_ result: consuming Result<OutboundHTTPResponse, OutboundHTTPFailure>) {
            switch result {
            case .success(let response): promise.succeed(response.head.status)
            case .failure(let failure): promise.fail(failure)
            }
        }
    }

    /// Read on the loop only.
    private final class PoolProbe: @unchecked Sendable {
        weak var pool: OutboundHTTP1Pool?
    }

    /// The pool's sweeps and its exchanges hold it or its parts while exchanges are in flight;
    /// once they ended, nothing but its owner does. Run for a new connection, then for an idle one.
    func testAPoolIsFreedOnceItsExchangesEnded() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let upstream = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Hello()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? upstream.close().wait() }
        let url = OutboundURL("http://127.0.0.1:\(upstream.localAddress!.port!)/")!
        let probe = PoolProbe()
        let answers = [loop.makePromise(of: Int.self), loop.makePromise(of: Int.self)]
        try loop.submit {
            let pool = OutboundHTTP1Pool(eventLoop: loop)
            probe.pool = pool
            func ask(_ answered: EventLoopPromise<Int>) {
                pool.execute(Exchange(to: url, answered))
            }
            ask(answers[0])
            answers[0].futureResult.assumeIsolated().whenSuccess { _ in ask(answers[1]) }
        }.wait()
        XCTAssertEqual(try answers[1].futureResult.wait(), 200)
        XCTAssertTrue(try loop.submit { probe.pool == nil }.wait())
    }
}
