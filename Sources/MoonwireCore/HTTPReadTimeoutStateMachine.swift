// Where the read timers of an HTTP/1.1 connection (or of an HTTP/2 stream, whose body alone
// they time) stand, without a channel or a clock: HTTPReadTimeouts tells it the events and the
// loop's time, and keeps its one timer at the deadline this answers. Tested with made-up times
// (HTTPReadTimeoutStateMachineTests).
//
// A body must keep up a minimum average rate, as Apache's `RequestReadTimeout
// body=20,MinRate=500` and Kestrel's MinRequestBodyDataRate demand: it gets `headerTimeout`
// seconds from its head, plus one second per `minBodyRate` bytes received. nginx's
// client_body_timeout bounds only the silence between two reads, which a client that sends one
// byte every few seconds never reaches; that bound stays too, so a body that arrived fast cannot
// bank its credit and then stall.
import NIOCore

/// The phases of an HTTP/1.1 connection's reads (an HTTP/2 stream's too) and the deadline each
/// one sets.
struct HTTPReadTimeoutStateMachine {
    enum Phase: Equatable {
        /// Between requests: the keep-alive timer runs.
        case idle
        /// Bytes of a header block arrived: the header deadline runs from the first one.
        case head
        /// The head is in, the body is arriving: the silence and rate deadlines run.
        case body
        /// The head went to the delegate and the body follows as the delegate takes it: the
        /// silence deadline runs while the server wants bytes, none while it holds reads (the
        /// delegate paces the body, so no rate can be asked of the client).
        case streaming
        /// The request is complete and being answered: no timer.
        case answering
        /// Between requests, with requests that arrived waiting (unparsed) until the client
        /// reads the answers it was sent: `send_timeout` runs (as nginx's does for a client that
        /// takes nothing), and closes it silently.
        case held
    }

    /// What the timer does when it fires.
    enum TimerAction: Equatable {
        /// The deadline moved later meanwhile: fire again then.
        case wait(until: NIODeadline)
        /// No deadline runs (the request is being answered).
        case nothing
        /// Between requests: close silently.
        case close
        /// Mid-request: answer 408 and close; `reason` is for the log.
        case requestTimeout(reason: String)
        /// Mid-answer, the client took nothing for `sendTimeout`: close (a log line, no answer).
        case sendTimeout
    }

    private(set) var phase = Phase.idle
    /// When the current phase runs out; nil while answering.
    private(set) var deadline: NIODeadline?
    private let keepAliveTimeout: TimeAmount
    private let headerTimeout: TimeAmount
    private let sendTimeout: TimeAmount
    let limits: HTTPLimits
    /// Inside a read: a phase change only notes that the deadline moves, and the deadline is set
    /// once when the read is complete. A request that arrives and is answered within one read
    /// moves through every phase but reads the clock once.
    private var reading = false
    private var deadlineMoved = false
    /// When the body's deadlines were first set (the end of the read that completed the head).
    private var bodyStart: NIODeadline?
    /// Bytes read since then: the body, its chunk framing and trailers.
    private var bodyBytes = 0
    /// Whether the connection takes more bytes without queueing them (HTTP/1.1).
    private var writable = true
    /// While a body streams: the server holds reads until the delegate takes what it has.
    private var streamHeld = false

    init(limits: HTTPLimits) {
        self.limits = limits
        keepAliveTimeout = .nanoseconds(Int64(limits.keepAliveTimeout * 1e9))
        headerTimeout = .nanoseconds(Int64(limits.headerTimeout * 1e9))
        sendTimeout = .nanoseconds(Int64(limits.sendTimeout * 1e9))
    }

    // MARK: Events. Each returns whether the deadline moved and must be set now (`setDeadline`);
    // inside a read it never must, the read's end does it once.

    /// Bytes arrived, before they are decoded.
    mutating func readStarted(bytes: Int) {
        reading = true
        switch phase {
        case .idle:
            phase = .head
            deadlineMoved = true
        case .body:
            bodyBytes &+= bytes
            deadlineMoved = true
        case .streaming:
            deadlineMoved = true
        case .head, .answering, .held:
            break
        }
    }

    /// The read batch ended.
    mutating func readComplete() -> Bool {
        reading = false
        return deadlineMoved
    }

    /// The decoder holds requests back until the client reads its answers.
    mutating func requestsHeld() -> Bool {
        switch phase {
        case .idle, .head:
            phase = .held
            return moved()
        case .body, .streaming, .answering, .held:
            return false
        }
    }

    /// The decoder took the requests it held: the next bytes start a header deadline.
    mutating func requestsTaken() {
        if case .held = phase { phase = .idle }
    }

    /// The header block is complete; the body, if any, follows.
    mutating func headReceived() -> Bool {
        phase = .body
        bodyStart = nil
        bodyBytes = 0
        return moved()
    }

    /// The head went to the delegate with its body to follow as a stream.
    mutating func bodyStreamed() -> Bool {
        phase = .streaming
        streamHeld = false
        return moved()
    }

    /// The server holds the streamed body's reads (the delegate left too much untaken), or
    /// reads again.
    mutating func streamHeld(_ held: Bool) -> Bool {
        streamHeld = held
        return phase == .streaming ? moved() : false
    }

    /// The streamed body ended: the server is answering, unless the answer began already.
    mutating func streamEnded() -> Bool {
        guard phase == .streaming else { return false }
        return requestReceived()
    }

    /// The whole request is in; the server is answering. True when the send deadline must
    /// be set now: the connection is already full of an earlier answer.
    mutating func requestReceived() -> Bool {
        phase = .answering
        deadline = nil
        deadlineMoved = false
        return writable ? false : moved()
    }

    /// The connection stopped or started taking bytes (HTTP/1.1). While an answer is being
    /// written and the socket takes nothing, `sendTimeout` runs, as nginx's send_timeout does
    /// between two writes; a connection that takes bytes again stops it.
    mutating func writabilityChanged(isWritable: Bool) -> Bool {
        writable = isWritable
        return phase == .answering ? moved() : false
    }

    /// Part of an answer went out while the connection is still full (a slice of a file
    /// written): the send deadline starts again.
    mutating func sendProgressed() -> Bool {
        phase == .answering && !writable ? moved() : false
    }

    /// The answer is about to be written and the connection stays open for the next request.
    mutating func answerStarted() -> Bool {
        phase = .idle
        return moved()
    }

    private mutating func moved() -> Bool {
        deadlineMoved = true
        return !reading
    }

    // MARK: Time

    /// Sets the deadline of the current phase, counted from `now`, and returns it.
    mutating func setDeadline(now: NIODeadline) -> NIODeadline? {
        deadlineMoved = false
        switch phase {
        case .idle:
            deadline = now + keepAliveTimeout
        case .held:
            deadline = now + sendTimeout
        case .head:
            deadline = now + headerTimeout
        case .body:
            let start = bodyStart ?? now
            bodyStart = start
            deadline = min(now + headerTimeout, rateDeadline(start: start) ?? .distantFuture)
        case .streaming:
            deadline = streamHeld ? nil : now + headerTimeout
        case .answering:
            deadline = writable ? nil : now + sendTimeout
        }
        return deadline
    }

    /// The timer fired at `now`.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        guard let deadline else { return .nothing }
        if deadline > now { return .wait(until: deadline) }
        self.deadline = nil
        switch phase {
        case .idle, .held:
            return .close
        case .head:
            return .requestTimeout(reason: "header block not complete within \(Self.seconds(limits.headerTimeout)) s")
        case .body:
            if let start = bodyStart, let rateDeadline = rateDeadline(start: start), rateDeadline <= now {
                let elapsed = Double((now - start).nanoseconds / 1_000_000) / 1000
                return .requestTimeout(
                    reason: "request body slower than \(limits.minBodyRate) bytes/s (\(bodyBytes) bytes in \(Self.seconds(elapsed)) s)")
            }
            return .requestTimeout(reason: "no request body bytes for \(Self.seconds(limits.headerTimeout)) s")
        case .streaming:
            return streamHeld ? .nothing : .requestTimeout(reason: "no request body bytes for \(Self.seconds(limits.headerTimeout)) s")
        case .answering:
            return writable ? .nothing : .sendTimeout
        }
    }

    /// The body's grace, plus one second per `limits.minBodyRate` bytes it sent; nil without a minimum.
    private func rateDeadline(start: NIODeadline) -> NIODeadline? {
        guard limits.minBodyRate > 0 else { return nil }
        // Capped at a year, far beyond any timeout, so the nanoseconds cannot overflow.
        let earned = min(Double(bodyBytes) / Double(limits.minBodyRate), 365 * 86400)
        return start + headerTimeout + .nanoseconds(Int64(earned * 1e9))
    }

    /// Seconds for a log line: "10", "2.5".
    private static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
    }
}
