// NIOH1Floor PORT: the least a server on SwiftNIO does per HTTP/1.1 keep-alive request, on
// 127.0.0.1:PORT, one event loop. Every request head (found by its empty line, its line ends
// searched with memchr) is answered with the same bytes, flushed at the end of each read;
// nothing is parsed, no header is made, nothing is allocated: what NIO's channel, pipeline,
// reads, writes and event loop cost per request is what this costs. Prints "listening on" once bound, as Moonwire does.
import Glibc
import NIOCore
import NIOPosix

final class ConstantAnswer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let answer = ByteBuffer(
        string: "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A head ends with an empty line; the load sends each head in one piece.
        let heads = unwrapInboundIn(data).withUnsafeReadableBytes { raw in
            var count = 0
            var offset = 0
            while offset < raw.count, let found = memchr(raw.baseAddress! + offset, 10, raw.count - offset) {
                let lf = UnsafeRawPointer(found) - raw.baseAddress!
                if lf >= 3, raw[lf - 1] == 13, raw[lf - 2] == 10, raw[lf - 3] == 13 { count += 1 }
                offset = lf + 1
            }
            return count
        }
        for _ in 0..<heads { context.write(wrapOutboundOut(Self.answer), promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
    print("usage: NIOH1Floor PORT")
    exit(2)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ConstantAnswer()) }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("listening on 127.0.0.1:\(port)")
try channel.closeFuture.wait()
