// The broadcasts one event loop has yet to hand to its subscribers. A broadcast to a few
// subscribers is delivered at once, as before; one to thousands is spread over the loop's turns,
// `connectionsPerTurn` subscribers at a time, so the requests and messages of the loop's other
// clients are served in between instead of waiting behind the whole fan-out (10,000 deliveries
// held the loop for 0.2 to 0.8 s, 20 of them for 3 s and more).
//
// Consecutive broadcasts to the same members (a handler publishing several messages to one
// channel) go out together: each member gets all of them in one write and one system call,
// which is most of what a delivery costs. Each member's messages keep their order: broadcasts
// are delivered in the order they were posted, and what a member is sent by other means while
// a broadcast to it waits here waits too (`ChannelSubscriber.broadcastQueued`).
//
// Memory stays bounded without a limit of its own: a waiting broadcast holds its message once
// and the member list it shares with the others, and each delivery goes through the member's
// send queue, which refuses what a client that does not read would pile up. Should posts come
// faster than the loop delivers them (over `backlogLimit` deliveries waiting), the backlog is
// delivered at once before the next is taken, the old way.
import NIOCore

/// One event loop's outbox of broadcasts. Posting is thread-safe (it hops to the loop); the
/// rest runs on the loop only.
final class FanoutOutbox: @unchecked Sendable {
    /// Subscribers served per turn of the loop: about a millisecond or two of work with one
    /// message each (a write system call apiece), so a fan-out to 10,000 takes 20 turns.
    static let connectionsPerTurn = 512
    /// Deliveries per turn when several messages go to each subscriber.
    static let deliveriesPerTurn = 8192
    /// Deliveries waiting beyond which the backlog is delivered at once.
    static let backlogLimit = 1_000_000

    private struct Job {
        let message: ChannelMessage
        let members: ChannelMembers
        /// The index of the next member to deliver to.
        var next = 0
    }

    let eventLoop: EventLoop
    private var jobs = CircularBuffer<Job>()
    private var waiting = 0
    private var scheduled = false
    /// Inside `deliverSome`.
    private var delivering = false

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Delivers `message` to `members` (all on this outbox's loop), now or over the next turns.
    func post(_ message: ChannelMessage, to members: ChannelMembers) {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { self.add(message, members) }
            return
        }
        add(message, members)
    }

    private func add(_ message: ChannelMessage, _ members: ChannelMembers) {
        if jobs.isEmpty, members.list.count <= Self.connectionsPerTurn {
            for member in members.list { member.deliverOnLoop(message, queued: false, flush: true) }
            return
        }
        if waiting + members.list.count > Self.backlogLimit, !delivering {
            while !jobs.isEmpty { deliverSome(connections: .max, deliveries: .max) }
        }
        for member in members.list { member.broadcastQueued() }
        jobs.append(Job(message: message, members: members))
        waiting += members.list.count
        guard !scheduled else { return }
        scheduled = true
        scheduleTurn()
    }

    /// The next turn, after the loop has looked for I/O. Not `execute`: NIO runs the tasks that
    /// tasks add before it selects again, so a fan-out re-scheduled that way holds the loop as
    /// long as one done in one go. A task due a little later than now is left for after the
    /// select (which waits that long at most when there is no I/O).
    private func scheduleTurn() {
        eventLoop.scheduleTask(in: Self.pause) { self.turn() }
    }

    static let pause = TimeAmount.microseconds(50)

    private func turn() {
        deliverSome(connections: Self.connectionsPerTurn, deliveries: Self.deliveriesPerTurn)
        guard !jobs.isEmpty else {
            scheduled = false
            return
        }
        scheduleTurn()
    }

    /// Delivers the oldest broadcasts to their next members, within the budgets; broadcasts
    /// in a row to the same members, and as far along, are delivered together. A delivery may
    /// post again (a script that hears its connection drained): that only appends.
    private func deliverSome(connections: Int, deliveries: Int) {
        var connectionsLeft = connections, deliveriesLeft = deliveries
        delivering = true
        defer { delivering = false }
        while connectionsLeft > 0, deliveriesLeft > 0, let first = jobs.first {
            var messages = [first.message]
            for job in jobs.dropFirst() {
                guard job.members === first.members, job.next == first.next else { break }
                messages.append(job.message)
            }
            let list = first.members.list
            let end = first.next + min(list.count - first.next, max(1, min(connectionsLeft, deliveriesLeft / messages.count)))
            for member in list[first.next..<end] {
                for (index, message) in messages.enumerated() {
                    member.deliverOnLoop(message, queued: true, flush: index == messages.count - 1)
                }
            }
            let served = end - first.next
            connectionsLeft -= served
            deliveriesLeft -= served * messages.count
            waiting -= served * messages.count
            if end == list.count {
                jobs.removeFirst(messages.count)
            } else {
                for offset in 0..<messages.count { jobs[jobs.index(jobs.startIndex, offsetBy: offset)].next = end }
            }
        }
    }
}
