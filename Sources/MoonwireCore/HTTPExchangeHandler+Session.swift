// The entries of an exchange handler that serves a stream of an HTTP2SessionConnection: the
// events a pipeline would deliver through channelRead, read, writability and inactive, called
// by the connection directly.
import NIOCore
import NIOHTTP1

extension HTTPExchangeHandler {
    /// A part of the stream's request.
    func receiveFromSession(_ part: consuming HTTPServerRequestPart) {
        guard let link else { return }
        receive(part, link: link)
    }

    /// The connection took content of this stream: more may come if the exchange wants it
    /// (`HTTPExchangeStateMachine.ReadAction`); otherwise flow control holds the client back
    /// until the handler drains what it has.
    func sessionWantsMore() {
        guard let link else { return }
        if case .read = machine.readRequested() { link.read() }
    }

    /// The stream's queued answer went out, or the socket drained: a streamed answer waiting
    /// on writability goes on.
    func sessionStreamWritable() {
        activeStream?.becameWritable()
        activeCopy?.becameWritable()
    }

    /// The stream closed, answered or not: what the exchange still holds is let go.
    func sessionStreamClosed() {
        streamClosed()
        detachLink()
    }
}
