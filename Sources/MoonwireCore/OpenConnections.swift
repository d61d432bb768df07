// The open connections of one event loop, so that a graceful stop can ask each of them to
// finish what it is doing (NIO's ChannelShouldQuiesceEvent) and, once the drain's time is up,
// close the ones still open. Kept per loop, without a lock: a connection is added and removed
// on its own loop, and the stop visits each loop in turn.
import NIOCore

/// The connections open on one event loop. Used on its loop only.
final class OpenConnections {
    private var channels: [ObjectIdentifier: Channel] = [:]
    /// Whether the server is stopping: a connection accepted just before the listeners closed
    /// is asked to finish as soon as it is added.
    private(set) var quiescing = false
    /// Whether a new process takes over the listeners (a binary upgrade): HTTP/1.1 answers
    /// then ask clients to reconnect, which brings them to it.
    private(set) var handingOver = false

    /// How many connections are open.
    var count: Int { channels.count }

    /// Tracks `channel` until it closes.
    func add(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        channels[id] = channel
        let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        channel.closeFuture.whenComplete { _ in bound.value.channels[id] = nil }
        if quiescing { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// Asks every connection to finish: HTTP/1.1 closes once idle (after its answers, which
    /// say `Connection: close` when `handingOver`), HTTP/2 sends GOAWAY and closes when its streams are done, a WebSocket
    /// closes with 1001.
    func quiesce(handingOver: Bool) {
        quiescing = true
        self.handingOver = handingOver
        for channel in channels.values { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// Closes every connection still open.
    func closeAll() {
        for channel in channels.values { channel.close(promise: nil) }
    }
}
