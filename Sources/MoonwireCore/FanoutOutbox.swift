// The broadcasts one event loop has yet to hand to its subscribers. A broadcast to a few
// subscribers is delivered at once, as before; one to more is spread over the loop's turns, each
// turn delivering for about `turnBudget` (a millisecond) before the loop looks for I/O again, so
// the requests and messages of the loop's other clients wait at most that long behind a
// fan-out (10,000 deliveries in one go held the loop for 0.2 to 0.8 s). A budget of time rather
// than of subscribers: a delivery costs 5 to 20 µs depending on the machine and its load, and a
// count that fits one machine's millisecond holds another's loop for ten.
//
// Consecutive broadcasts to the same members (a handler publishing several messages to one
// channel) go out together: each member gets all of them in one write and one system call,
// which is most of what a delivery costs. Each member's messages keep their order: broadcasts
// are delivered in the order they were posted, and a member about to be sent something by other
// means while broadcasts to it wait here is first handed those (`deliverWaiting`), out of turn.
// So a post costs the same for 10 members as for 10,000: nothing is done per member until its
// turn.
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
    /// Members a broadcast reaches at once, inside the publish: well under a millisecond.
    static let deliveredAtOnce = 64
    /// How long a turn of the loop delivers before it lets the loop serve its other clients.
    static let turnBudget = TimeAmount.milliseconds(1)
    /// Deliveries between two readings of the clock (a reading costs about what a tenth of a
    /// delivery does).
    static let clockStride = 16
    /// Deliveries waiting beyond which the backlog is delivered at once.
    static let backlogLimit = 1_000_000

    private struct Job {
        let message: ChannelMessage
        let members: ChannelMembers
        /// The index of the next member to deliver to.
        var next = 0
        /// Members already handed this broadcast out of turn, which the turns skip.
        var served: Set<ObjectIdentifier> = []
    }

    let eventLoop: EventLoop
    private let clock: @Sendable () -> NIODeadline
    private var jobs = CircularBuffer<Job>()
    private var waiting = 0
    private var scheduled = false
    /// Inside `deliver`.
    private var delivering = false
    /// The members of all jobs' `served` sets: while none, the turns look in no set.
    private var servedOutOfTurn = 0
    /// Inside `deliver`: the run being delivered (the first `run` jobs), the member it is at,
    /// and the last of the run's jobs handed to that member; the jobs' `next` are brought up to
    /// date when the run stops. A delivery may make its member be sent something (a script
    /// that hears its connection drained), which must come after the rest of the run.
    private var progress: (run: Int, member: Int, handed: Int)?

    /// `clock` tells the time turns are budgeted in; tests give one they move themselves.
    init(eventLoop: EventLoop, clock: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.eventLoop = eventLoop
        self.clock = clock
    }

    /// No broadcast waits: nothing needs `deliverWaiting`. On the loop only.
    var isIdle: Bool { jobs.isEmpty }

    /// Delivers `message` to `members` (all on this outbox's loop), now or over the next turns.
    func post(_ message: ChannelMessage, to members: ChannelMembers) {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { self.add(message, members) }
            return
        }
        add(message, members)
    }

    private func add(_ message: ChannelMessage, _ members: ChannelMembers) {
        if jobs.isEmpty, members.list.count <= Self.deliveredAtOnce {
            for member in members.list { member.deliverOnLoop(message, flush: true) }
            return
        }
        if waiting + members.list.count > Self.backlogLimit, !delivering {
            deliver(until: nil)
        }
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

    /// Long enough for the loop to find the next turn not yet due when it looks right after
    /// this one; short, as the loop idles this long between turns when no I/O comes (50 µs
    /// idled 5% of a fan-out away in turns of a millisecond).
    static let pause = TimeAmount.microseconds(10)

    private func turn() {
        deliver(until: clock() + Self.turnBudget)
        guard !jobs.isEmpty else {
            scheduled = false
            return
        }
        scheduleTurn()
    }

    /// Delivers the oldest broadcasts to their next members until `deadline` (nil: all of
    /// them), at least one member per call; broadcasts in a row to the same members, and as far
    /// along, are delivered together. A delivery may post again (a script that hears its
    /// connection drained): that only appends.
    private func deliver(until deadline: NIODeadline?) {
        delivering = true
        defer {
            delivering = false
            progress = nil
        }
        var sinceClock = 0
        while let first = jobs.first {
            var run = 1
            while run < jobs.count, job(run).members === first.members, job(run).next == first.next { run += 1 }
            let messages = (0..<run).map { job($0).message }
            let list = first.members.list
            var index = first.next
            var due = false
            while !due, index < list.count {
                let member = list[index]
                for offset in 0..<run where servedOutOfTurn == 0 || !job(offset).served.contains(ObjectIdentifier(member)) {
                    progress = (run, index, offset)
                    member.deliverOnLoop(messages[offset], flush: offset == run - 1)
                    waiting -= 1
                }
                index += 1
                sinceClock += run
                if sinceClock >= Self.clockStride, let deadline {
                    sinceClock = 0
                    due = clock() >= deadline
                }
            }
            progress = nil
            for offset in 0..<run { jobs[jobs.index(jobs.startIndex, offsetBy: offset)].next = index }
            if index == list.count {
                for _ in 0..<run { servedOutOfTurn -= jobs.removeFirst().served.count }
            }
            if due { return }
        }
    }

    private func job(_ offset: Int) -> Job {
        jobs[jobs.index(jobs.startIndex, offsetBy: offset)]
    }

    /// Hands `subscriber` now, in the order they were posted, the broadcasts that wait here for
    /// it: it is about to be sent something else (a script's message or close), which must
    /// come after them. The turns then skip it. On the loop only.
    func deliverWaiting(to subscriber: any ChannelSubscriber) {
        let id = ObjectIdentifier(subscriber)
        var owed: [Int] = []
        for offset in 0..<jobs.count {
            let job = job(offset)
            guard let position = job.members.position(of: id), !job.served.contains(id) else { continue }
            if let progress, offset < progress.run {
                guard position > progress.member || position == progress.member && offset > progress.handed else { continue }
            } else if position < job.next {
                continue
            }
            owed.append(offset)
        }
        for (count, offset) in owed.enumerated() {
            guard jobs[jobs.index(jobs.startIndex, offsetBy: offset)].served.insert(id).inserted else { continue }
            servedOutOfTurn += 1
            waiting -= 1
            subscriber.deliverOnLoop(job(offset).message, flush: count == owed.count - 1)
        }
    }
}
