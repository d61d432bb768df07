// What a listener does when accept(2) fails for lack of file descriptors or memory: it stops
// accepting for a moment instead of retrying at once, and the episode is logged once
// (DescriptorShortage). The delay is nginx's: it re-enables accepting 500 ms after EMFILE or
// ENFILE. Written here rather than taken from NIO: NIO's ServerBootstrap.bind installs no
// backoff, and NIO's AcceptBackoffHandler only delays the next read() call, while a listening
// channel whose accept failed still has its read pending and stays registered for readable
// events, so the loop kept waking to fail accept(2) again (72 % of a core with that handler in
// place, 44 % without). Turning the channel's autoRead off unregisters the listening socket;
// it is turned on again after the delay, and the connections waiting in the kernel's backlog
// are accepted then.
import Glibc
import NIOCore

/// On a listening channel: pauses accepting after an accept(2) that failed for lack of
/// resources, and reports a lack of descriptors and its end.
final class AcceptBackoff: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Channel

    /// How long a listener waits before accepting again.
    static let delay = TimeAmount.milliseconds(500)

    private let descriptors: DescriptorShortage
    private var resume: Scheduled<Void>?

    init(descriptors: DescriptorShortage) {
        self.descriptors = descriptors
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        descriptors.accepted()
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let error = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) else {
            return context.fireErrorCaught(error)
        }
        if DescriptorShortage.isShortage(error) { descriptors.failed(.accept, error: error) }
        guard resume == nil, let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        let channel = context.channel
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        resume = context.eventLoop.scheduleTask(in: Self.delay) {
            bound.value.resume = nil
            try? channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }
}
