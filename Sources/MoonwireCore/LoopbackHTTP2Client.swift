// The HTTP/2 client of `moonwire test` (`t.get(path, {http2 = true})`): cleartext HTTP/2 by
// prior knowledge over one loopback connection, a stream per request, on a NIO loop of its own;
// the caller blocks until the answer is whole.
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix

/// A blocking h2c client to a loopback port. For one thread at a time.
public final class LoopbackHTTP2Client {
    public let port: Int
    /// Seconds to wait for a whole answer.
    public var timeout: Double
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var connection: (channel: Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer)?

    public init(port: Int, timeout: Double = 30) {
        self.port = port
        self.timeout = timeout
    }

    deinit {
        close()
        try? group.syncShutdownGracefully()
    }

    /// Sends one request on a new stream and waits for its answer.
    public func exchange(
        method: String, path: String, headers: [(String, String)], body: [UInt8]
    ) throws(LoopbackError) -> LoopbackResponse {
        do {
            let multiplexer = try connect()
            let loop = group.next()
            let answer = loop.makePromise(of: LoopbackResponse.self)
            let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path, headers: HTTPHeaders(headers))
            let body = ByteBuffer(bytes: body)
            let created = loop.makePromise(of: Channel.self)
            multiplexer.createStreamChannel(promise: created) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers(
                        HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http), LoopbackResponseCollector(answer: answer))
                }
            }
            let stream = try created.futureResult.wait()
            stream.write(HTTPClientRequestPart.head(head), promise: nil)
            if body.readableBytes > 0 { stream.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
            stream.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let seconds = timeout
            let timer = loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
                answer.fail(LoopbackError("no answer within \(seconds) s"))
            }
            defer { timer.cancel() }
            return try answer.futureResult.wait()
        } catch let error as LoopbackError {
            close()
            throw error
        } catch {
            close()
            throw LoopbackError("HTTP/2: \(error)")
        }
    }

    /// Closes the connection.
    public func close() {
        guard let connection else { return }
        self.connection = nil
        try? connection.channel.close().wait()
    }

    private func connect() throws -> NIOHTTP2Handler.StreamMultiplexer {
        if let connection, connection.channel.isActive { return connection.multiplexer }
        let channel = try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).wait()
        let multiplexer = try channel.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
        ) { $0.eventLoop.makeSucceededVoidFuture() }.wait()
        connection = (channel, multiplexer)
        return multiplexer
    }
}

/// Gathers one stream's answer.
private final class LoopbackResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let answer: EventLoopPromise<LoopbackResponse>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(answer: EventLoopPromise<LoopbackResponse>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status.code >= 200 { self.head = head }
        case .body(let buffer):
            body += buffer.readableBytesView
        case .end:
            guard let head else { return }
            let headers = head.headers.map { (name: $0.name, value: $0.value) }
            answer.succeed(LoopbackResponse(status: Int(head.status.code), headers: headers, body: body))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        answer.fail(LoopbackError("HTTP/2 stream: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(LoopbackError("the HTTP/2 stream closed before its answer"))
    }
}
