// Holds a TLS connection's incoming bytes while the delegate verifies the client's certificate
// (OnSSLVerifyPeer, which may wait). NIOSSL asks for that verification once the handshake is
// complete and fails a connection whose bytes arrive before the answer (a TLS 1.3 client sends
// its request right after its Finished), so the bytes wait here, in front of the TLS handler,
// and go on once it has taken the answer. Reading stops once 64 KiB wait.
import NIOCore

final class TLSVerificationGate: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var closed = false
    private var held: [ByteBuffer] = []
    private var heldBytes = 0
    private var readWanted = false
    private var context: ChannelHandlerContext?

    private static let limit = 64 * 1024

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Holds what arrives from now until `open`.
    func close() {
        closed = true
    }

    /// Lets the held bytes go on, on a later turn of the loop: the TLS handler takes the
    /// verification's answer first.
    func open(after answer: EventLoopFuture<Bool>) {
        let loop = answer.eventLoop
        let gate = NIOLoopBound(self, eventLoop: loop)
        answer.whenComplete { _ in
            loop.execute { gate.value.release() }
        }
    }

    private func release() {
        guard closed else { return }
        closed = false
        guard let context else { return }
        let bytes = held
        held = []
        heldBytes = 0
        for chunk in bytes { context.fireChannelRead(wrapInboundOut(chunk)) }
        if !bytes.isEmpty { context.fireChannelReadComplete() }
        if readWanted {
            readWanted = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard closed else { return context.fireChannelRead(data) }
        let chunk = unwrapInboundIn(data)
        heldBytes += chunk.readableBytes
        held.append(chunk)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard closed else { return context.fireChannelReadComplete() }
    }

    func read(context: ChannelHandlerContext) {
        guard closed, heldBytes >= Self.limit else { return context.read() }
        readWanted = true
    }
}
