// NIOH2Hello streams|frames PORT: "hello" to every HTTP/2 request on 127.0.0.1:PORT (h2c by
// prior knowledge), one event loop. Prints "listening on" once bound, as Moonwire does.
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix

/// `streams`: the answer, on a child channel behind NIO's HTTP/2-to-HTTP/1 codec.
final class StreamHello: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain")
        headers.add(name: "content-length", value: "5")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "hello")))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// `frames`: the answer, written at the connection for each request's last frame.
final class FrameHello: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private var wrote = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let ends: Bool
        switch frame.payload {
        case .headers(let headers): ends = headers.endStream
        case .data(let data): ends = data.endStream
        default: ends = false
        }
        guard ends else { return }
        let headers = HPACKHeaders([(":status", "200"), ("content-type", "text/plain"), ("content-length", "5")])
        context.write(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .headers(.init(headers: headers)))), promise: nil)
        let body = HTTP2Frame.FramePayload.Data(data: .byteBuffer(ByteBuffer(string: "hello")), endStream: true)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .data(body))), promise: nil)
        wrote = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if wrote { context.flush() }
        wrote = false
        context.fireChannelReadComplete()
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, ["streams", "frames"].contains(arguments[1]), let port = Int(arguments[2]) else {
    print("usage: NIOH2Hello streams|frames PORT")
    exit(2)
}
let shape = arguments[1]
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            if shape == "frames" {
                try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
                try channel.pipeline.syncOperations.addHandler(FrameHello())
            } else {
                _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandlers([HTTP2FramePayloadToHTTP1ServerCodec(), StreamHello()])
                    }
                }
            }
        }
    }
let server = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("listening on 127.0.0.1:\(port) (\(shape))")
try server.closeFuture.wait()
