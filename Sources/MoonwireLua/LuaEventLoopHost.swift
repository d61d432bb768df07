// The Lua side of one event loop: the current script generation, which gets every new
// event, and the replaced generations still finishing calls they had started.
import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1

/// Core's delegate for one event loop; swaps generations on reload without dropping a call.
public final class LuaEventLoopHost: ServerDelegate {
    private let runtime: LuaRuntime
    private let eventLoop: EventLoop
    /// The generation new events go to.
    public private(set) var current: LuaVM
    /// Replaced generations with calls in progress, closed when their last call returns.
    private var draining: [ObjectIdentifier: LuaVM] = [:]
    /// Where OnHTTP2BeforeAsyncRequest sends requests; nil in workers themselves.
    private let workers: LuaWorkerPool?
    /// Whether this is a worker VM's host (its VMs see `moonwire.worker == true`).
    let isWorker: Bool
    /// Set by `start`: new generations start their timers when installed.
    private var started = false
    /// The loop whose generations run the timers made while loading (and OnStartup).
    private var primary = false
    /// Cancels the next session sweep: shutdown ends the cycle the sweep makes (it holds the
    /// host strongly, as a weak reference would put every retain of the host, one per request,
    /// on the reference count's slow path).
    private var stopSessionSweep: (@Sendable () -> Void)?

    /// Loads the first generation on this loop; throws its error (with file:line) when the
    /// scripts fail.
    public init(
        runtime: LuaRuntime, scripts: ScriptSnapshot, eventLoop: EventLoop, workers: LuaWorkerPool? = nil, isWorker: Bool = false
    ) throws {
        self.runtime = runtime
        self.eventLoop = eventLoop
        self.workers = workers
        self.isWorker = isWorker
        self.current = try LuaVM(runtime: runtime, scripts: scripts, eventLoop: eventLoop, generation: 1, isWorker: isWorker)
        current.outboundPool = outboundPool
    }

    /// Keep-alive connections to plain HTTP upstreams, kept across generations.
    private lazy var outboundPool = OutboundHTTP1Pool(eventLoop: eventLoop)

    /// Makes `next`, a generation built for this loop on another thread, current; calls
    /// already running finish on the generation they started in.
    func install(_ next: LuaVM) {
        next.adopt()
        next.outboundPool = outboundPool
        let previous = current
        next.importedSocketData = previous.exportSocketData().merging(previous.importedSocketData) { mine, _ in mine }
        next.localSockets = previous.localSockets
        current = next
        previous.stopTimers()
        if started { next.startTimers(primary: primary) }
        guard !previous.calls.isEmpty else { return }
        let id = ObjectIdentifier(previous)
        draining[id] = previous
        previous.onIdle = { [unowned self] in self.draining[id] = nil }
    }

    /// Starts serving: the timers the scripts made while loading (those of the primary loop's
    /// host, and `every_loop` ones everywhere), and OnStartup on the primary loop. Call it on
    /// every loop's host once the server listens.
    public func start(primary: Bool) {
        self.primary = primary
        started = true
        current.startTimers(primary: primary)
        if primary {
            current.startup()
            scheduleSessionSweep()
        }
    }

    /// Once a second on the server's clock (which `t.advance` moves) the primary loop ends the
    /// expired sessions of the whole server (their OnSessionEnd runs in whichever generation is
    /// current here).
    private func scheduleSessionSweep() {
        stopSessionSweep = runtime.clock.schedule(in: .seconds(1), on: eventLoop) { [self] in
            if runtime.sessions.count > 0 { current.sweepSessions() }
            scheduleSessionSweep()
        }
    }

    /// Calls OnShutdown (once per server: call it on one loop's host).
    public func shutdown() {
        stopSessionSweep?()
        stopSessionSweep = nil
        current.shutdown()
    }

    /// The cluster link's event on the current generation (call it on one loop's host).
    public func clusterLink(_ event: ClusterLinkEvent) { current.clusterLink(event) }

    /// OnBeforeBinding on the current generation: the listeners to bind, or the reason the
    /// script's list cannot be used (LuaBindingsError).
    public func beforeBinding(_ listeners: [Listener]) -> EventLoopFuture<[Listener]> {
        let promise = eventLoop.makePromise(of: [Listener].self)
        current.beforeBinding(listeners) { outcome in
            switch outcome {
            case .listeners(let listeners): promise.succeed(listeners)
            case .failed(let message): promise.fail(LuaBindingsError(description: message))
            }
        }
        return promise.futureResult
    }

    /// OnError(conn, message) for a listener that failed: `conn.local_port` is its port.
    public func listenerFailed(port: Int, message: String) {
        current.protocolError(ConnectionInfo(remoteIP: "", remotePort: 0, localPort: port), message: message)
    }

    public func shouldAccept(_ connection: ConnectionInfo) -> DelegateAnswer<Bool> {
        current.shouldAccept(connection)
    }

    public func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        // Unretained: only `load`, a task of its own on this loop, replaces the generation.
        Unmanaged.passUnretained(current)._withUnsafeGuaranteedRef { vm in
            // A streamed body belongs to this loop: its request cannot go to a worker.
            if let workers, request.bodyStream == nil, vm.wantsWorker(request) {
                return workers.dispatch(request, responder: responder, from: eventLoop)
            }
            vm.handle(request, responder: responder)
        }
    }

    public func pushLinks(for request: HTTPRequest) -> [String] {
        current.pushLinks(for: request)
    }

    public func streamedBodyLimit(for head: HTTPRequestHead) -> Int? {
        current.streamedBodyLimit(for: head)
    }

    /// Asked first, so that a bodyless head skips `streamedBodyLimit` and its look-ups of the
    /// framing fields (about 250 instructions per request).
    public var streamsBodylessRequests: Bool { current.streamsBodylessRequests }

    public func selectApplicationProtocol(_ connection: ConnectionInfo, offered: [String]) -> String? {
        current.selectApplicationProtocol(connection, offered: offered)
    }

    public func verifyPeer(_ connection: ConnectionInfo, certificate: PeerCertificate) -> DelegateAnswer<Bool> {
        current.verifyPeer(connection, certificate: certificate)
    }

    public var takesUnknownProtocols: Bool { current.takesUnknownProtocols }

    public func unknownProtocol(_ connection: RawConnection, firstBytes: ByteBuffer) {
        current.unknownProtocol(connection, firstBytes: firstBytes)
    }

    public func protocolError(_ connection: ConnectionInfo, message: String) {
        current.protocolError(connection, message: message)
    }

    public func webSocketHandshake(_ request: HTTPRequest, decision: EventLoopPromise<WebSocketHandshakeDecision>) {
        current.webSocketHandshake(request, decision: decision)
    }

    public func webSocketOpened(_ socket: WebSocketConnection) {
        current.webSocketOpened(socket)
    }

    public func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {
        generation(of: socket).webSocketMessage(socket, data, isText: isText)
    }

    public func webSocketFragment(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool, isFinal: Bool) {
        generation(of: socket).webSocketFragment(socket, data, isText: isText, isFinal: isFinal)
    }

    public func webSocketHeartbeat(_ socket: WebSocketConnection) -> DelegateAnswer<Bool> {
        generation(of: socket).webSocketHeartbeat(socket)
    }

    public func webSocketDrained(_ socket: WebSocketConnection) {
        generation(of: socket).webSocketDrained(socket)
    }

    public func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {
        let vm = generation(of: socket)
        // The current generation copied the replaced one's sockets when it was installed.
        if vm !== current { current.localSockets[socket.guid] = nil }
        vm.webSocketClosed(socket, code: code, reason: reason)
    }

    /// The generation a socket's events go to: the one where an earlier event of it still
    /// waits (its events run in order), or the current one.
    private func generation(of socket: WebSocketConnection) -> LuaVM {
        guard !draining.isEmpty else { return current }
        return draining.values.first { $0.holdsEvents(of: socket) } ?? current
    }
}
