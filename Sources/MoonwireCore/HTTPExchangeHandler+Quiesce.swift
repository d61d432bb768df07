// The graceful stop of an HTTP/1.1 connection (ChannelShouldQuiesceEvent): it closes once idle
// for a whole grace, so that a request a busy client is sending is never cut.
import NIOCore

extension HTTPExchangeHandler {
    /// A graceful stop on HTTP/1.1: the connection closes once idle for a whole grace, so a
    /// request a busy client (wrk, a pool) is sending is never cut. Answers say `Connection:
    /// close` only when a new process takes over the listeners (an upgrade); in a plain stop a
    /// client sent to reconnect would be refused. (HTTP/2 streams ignore the event: GOAWAY.)
    func quiesce(link: ExchangeLink) {
        guard !draining else { return }
        draining = true
        quiescing = environment.openConnections.handingOver
        let bound = NIOLoopBound(self, eventLoop: link.eventLoop)
        link.eventLoop.scheduleTask(in: Self.idleGrace) { bound.value.closeIfIdle() }
    }

    /// Closes the connection when idle since the last look; otherwise (an answer under way,
    /// which counts at the next look too, or a request since) looks again after another grace.
    private func closeIfIdle() {
        guard let link else { return }
        var idle = false
        if case .idle = machine.state { idle = true }
        if idle, !heardWhileDraining { return link.close() }
        heardWhileDraining = !idle
        let bound = NIOLoopBound(self, eventLoop: link.eventLoop)
        link.eventLoop.scheduleTask(in: Self.idleGrace) { bound.value.closeIfIdle() }
    }

    /// How long an idle HTTP/1.1 connection stays open once the server is stopping.
    static let idleGrace = TimeAmount.milliseconds(250)
}
