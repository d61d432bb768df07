// The channel handler of one connection to Redis: reads bytes into hiredis' reader and hands
// each whole reply to its client, in order. Bytes that are not RESP close the connection: the
// replies after them could not be matched to their commands.
import NIOCore
import NIOPosix
import NIOSSL

/// One Redis connection's inbound side. Confined to its channel's loop.
final class RedisConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let reader = RedisReplyReader()
    /// Each reply, in order; set by the client once connected (Redis says nothing first).
    var onReply: ((RedisReply) -> Void)?
    /// Once, when the connection ends, with why.
    var onClose: ((String) -> Void)?
    private var closeReason: String?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.feed(unwrapInboundIn(data))
        do {
            while closeReason == nil, let reply = try reader.next() { onReply?(reply) }
        } catch {
            close(reason: "\(error) (the connection is closed)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let onClose = onClose
        self.onClose = nil
        onReply = nil
        onClose?(closeReason ?? "the connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if closeReason == nil {
            closeReason = error is NIOSSLError ? "TLS: \(OutboundTCPConnection.tlsReason("\(error)"))" : "\(error)"
        }
        context.close(promise: nil)
    }

    /// Writes `bytes` (whole commands).
    func write(_ bytes: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    /// Closes with `reason`, which the close reports.
    func close(reason: String) {
        if closeReason == nil { closeReason = reason }
        context?.close(promise: nil)
    }
}

extension RedisConnection {
    typealias OutboundOut = ByteBuffer

    /// Opens a connection to `endpoint` on `eventLoop` (call it there): `completion` gets the
    /// handler of a connected channel, or why there is none (in words, with the target).
    static func open(
        _ endpoint: RedisEndpoint, on eventLoop: EventLoop,
        completion: @escaping (Result<(RedisConnection, Channel), RedisClientError>) -> Void
    ) {
        let sslContext: NIOSSLContext?
        do {
            sslContext = try endpoint.tls?.context()
        } catch {
            let store = endpoint.tls?.caFile.map { "tls.ca \($0)" } ?? "the trust store"
            return completion(.failure(RedisClientError(description: "redis \(endpoint.target): TLS: \(store): \(error)")))
        }
        let serverName = endpoint.tls.map { $0.serverName ?? endpoint.host }.flatMap {
            OutboundTCPConnection.isIPAddress($0) ? nil : $0
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(Int64(endpoint.timeout * 1e9)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext { try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName)) }
                    try pipeline.addHandler(RedisConnection())
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    let failure = OutboundTCPConnection.describe(error, target: endpoint.target, host: endpoint.host, seconds: endpoint.timeout)
                    completion(.failure(RedisClientError(description: failure.description)))
                case .success(let channel):
                    guard let connection = try? channel.pipeline.syncOperations.handler(type: RedisConnection.self) else {
                        channel.close(promise: nil)
                        return completion(.failure(RedisClientError(description: "the connection closed")))
                    }
                    completion(.success((connection, channel)))
                }
            }
    }
}
