// The live dashboard's feed (moonwire.options{dashboard = {path = ...}}): once a second it
// reads the server's series (DashboardSample, the same numbers /metrics shows) and the recent
// faults and reloads (DashboardEventLog), and sends one server-sent event with all of it to
// every open dashboard. Sampling on a timer, not per request, keeps the request path as it is
// with metrics alone; a frame carries the recent history too, so a page that connects (or
// reconnects) draws its graph at once.
import Foundation
import MoonwireCore
import NIOConcurrencyHelpers
import NIOCore

/// The sampler and the streams it feeds. Thread-safe.
public final class DashboardFeed: Sendable {
    /// What one event of the feed holds (JSON).
    struct Frame: Encodable {
        /// Milliseconds since 1970.
        var time: Int64
        /// Seconds since the feed started.
        var uptime: Double
        var requests: Double
        /// Requests per second over the last second; `history`: the rate of each of the last
        /// `historyLength` seconds, oldest first (the last is `rps`).
        var rps: Double
        var history: [Double]
        /// Totals by status class ("1xx" ... "5xx").
        var status: [String: Double]
        /// 4xx and 5xx answers per second over the last second.
        var clientErrorsPerSecond: Double
        var serverErrorsPerSecond: Double
        /// Latency percentiles in seconds over `latencyWindow` seconds; nil: no request then.
        var p50: Double?
        var p90: Double?
        var p99: Double?
        var latencyWindow: Int
        var connections: Double
        var websockets: Double
        var responseBytes: Double
        var faults: [String: Double]
        var reloads: Double
        var events: [DashboardEventLog.Entry]
    }

    /// Seconds of requests-per-second history a frame carries (the graph's width).
    static let historyLength = 120
    /// Seconds of requests the percentiles cover.
    static let latencyWindow = 10

    private struct State {
        var streams: [ServerSentEventStream] = []
        var samples: [(at: NIODeadline, sample: DashboardSample)] = []
        var history: [Double] = []
        var lastEvent: ByteBuffer?
        var task: RepeatedTask?
        var started = NIODeadline.now()
        /// The server is stopping: streams are ended, new ones end at once.
        var closed = false
    }

    private let metrics: ServerMetrics
    private let events: DashboardEventLog
    private let state = NIOLockedValueBox(State())

    init(metrics: ServerMetrics, events: DashboardEventLog) {
        self.metrics = metrics
        self.events = events
    }

    /// Starts sampling once a second on `loop`, if not started yet; it stops with the loop.
    public func start(on loop: EventLoop) {
        state.withLockedValue { state in
            guard state.task == nil else { return }
            state.started = .now()
            state.task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { [weak self] _ in
                self?.tick()
            }
        }
    }

    /// Adds a stream to the feed; it gets the latest frame at once, then one a second.
    func add(_ stream: ServerSentEventStream) {
        let (last, closed) = state.withLockedValue { state in
            if !state.closed { state.streams.append(stream) }
            return (state.lastEvent, state.closed)
        }
        if let last { stream.send(last) }
        if closed { stream.close() }
    }

    /// Ends every stream, and those added later at once: a feed never ends by itself, so an
    /// open dashboard would otherwise hold a graceful stop for its whole drain timeout.
    public func close() {
        let streams = state.withLockedValue { state in
            state.closed = true
            defer { state.streams.removeAll() }
            return state.streams
        }
        for stream in streams { stream.close() }
    }

    /// Takes a sample, and sends its frame to the streams still open.
    func tick() {
        let now = NIODeadline.now()
        let sample = DashboardSample(metrics)
        let recent = events.recent
        let (event, streams) = state.withLockedValue { state -> (ByteBuffer, [ServerSentEventStream]) in
            let previous = state.samples.last
            state.samples.append((now, sample))
            if state.samples.count > Self.latencyWindow + 1 { state.samples.removeFirst() }
            let seconds = previous.map { Double((now - $0.at).nanoseconds) / 1e9 } ?? 0
            func rate(_ value: (DashboardSample) -> Double) -> Double {
                guard let previous, seconds > 0 else { return 0 }
                return max(0, value(sample) - value(previous.sample)) / seconds
            }
            let rps = rate { $0.requests }
            if previous != nil {
                state.history.append(rps)
                if state.history.count > Self.historyLength { state.history.removeFirst() }
            }
            let oldest = state.samples[0].sample
            let frame = Frame(
                time: Int64(Date().timeIntervalSince1970 * 1000), uptime: Double((now - state.started).nanoseconds) / 1e9,
                requests: sample.requests, rps: rps, history: state.history,
                status: Dictionary(uniqueKeysWithValues: sample.requestsByClass.enumerated().map { ("\($0.offset + 1)xx", $0.element) }),
                clientErrorsPerSecond: rate { $0.requestsByClass[3] }, serverErrorsPerSecond: rate { $0.requestsByClass[4] },
                p50: sample.latencyQuantile(0.5, since: oldest), p90: sample.latencyQuantile(0.9, since: oldest),
                p99: sample.latencyQuantile(0.99, since: oldest), latencyWindow: Self.latencyWindow,
                connections: sample.openConnections, websockets: sample.openWebSockets, responseBytes: sample.responseBytes,
                faults: sample.faults, reloads: sample.reloads, events: recent)
            let event = Self.encode(frame)
            state.lastEvent = event
            state.streams.removeAll { !$0.isOpen }
            return (event, state.streams)
        }
        for stream in streams { stream.send(event) }
    }

    /// A frame as one server-sent event (`data: {json}`).
    static func encode(_ frame: Frame) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = (try? encoder.encode(frame)) ?? Data("{}".utf8)
        return ServerSentEvent.encodedMessage(ByteBuffer(bytes: json))
    }
}
