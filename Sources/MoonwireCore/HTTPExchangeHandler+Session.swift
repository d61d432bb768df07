// The entries of an exchange handler that serves a stream of an HTTP2SessionConnection: the
// events a pipeline would deliver through channelRead, read, writability and inactive, called
// by the connection directly.
import NIOCore
import NIOHTTP1

extension HTTPExchangeHandler {
    /// Parts of the stream's request that came in one read: `part`, then the request's end
    /// when `thenEnd`. As a read of a stream's child channel does on the nio engine, it moves
    /// the body's timers (`HTTPReadTimeouts`), which start with the head; a head that ends the
    /// request arms none.
    func receiveFromSession(_ part: consuming HTTPServerRequestPart, thenEnd: Bool = false) {
        guard let link else { return }
        var bytes = 0
        switch part {
        case .head: timeouts.attachStream(eventLoop: link.eventLoop)
        case .body(let body): bytes = body.readableBytes
        case .end: break
        }
        timeouts.readStarted(bytes: bytes)
        receive(part, link: link)
        if thenEnd, let link = self.link { receive(.end(nil), link: link) }
        timeouts.readComplete()
    }

    /// The connection took content of this stream: more may come if the exchange wants it
    /// (`HTTPExchangeStateMachine.ReadAction`); otherwise flow control holds the client back
    /// until the handler drains what it has.
    func sessionWantsMore() {
        guard let link else { return }
        if case .read = machine.readRequested() { link.read() }
    }

    /// The stream's queued answer went out, or the socket drained: a streamed answer waiting
    /// on writability goes on, if its own stream takes more. (The socket's drain is told to
    /// every stream; one whose queue is still full must not be woken, or each drain would let
    /// its producer add one more piece.)
    func sessionStreamWritable() {
        guard link?.isWritable == true else { return }
        activeStream?.becameWritable()
        activeCopy?.becameWritable()
    }

    /// The stream closed, answered or not: what the exchange still holds is let go.
    func sessionStreamClosed() {
        streamClosed()
        detachLink()
    }
}
