// One Lua 5.4 VM with the moonwire API installed and the script tree loaded. Each event loop
// owns one, like an OpenResty worker, so no lock is ever taken on the request path.
import CLua
import CLuaTick
import Logging
import MoonwireCore
import MoonwireRouting
import NIOCore

/// A Lua state confined to one event loop (or to the `moonwire check` command).
public final class LuaVM {
    let L: LuaThread
    /// Allocator, hook and owner bookkeeping the C side reads (see mw_VMSpace in the shim).
    let space: UnsafeMutablePointer<mw_VMSpace>
    let runtime: LuaRuntime
    /// The source every file of this generation is loaded from.
    let scripts: ScriptSnapshot
    let eventLoop: EventLoop?
    /// Which load of the scripts this VM is (1 for the first, +1 per reload).
    public let generation: Int
    /// Called when the VM has no call in progress any more, so a replaced generation can close.
    var onIdle: (() -> Void)?

    var logger: Logger { runtime.logger }
    var developmentMode: Bool { runtime.developmentMode }
    var faults: FaultCounters { runtime.faults }
    var names: ScriptNames { scripts.names }

    /// Settings the scripts made while loading.
    public internal(set) var settings = ScriptSettings()

    var events = LuaEventRefs()
    var hostMetatableRef: Int32 = LUA_NOREF
    var socketMetatableRef: Int32 = LUA_NOREF
    /// The registry's tables of moonwire.http's answers.
    var httpAnswerTables = LuaHTTPAnswerTables()
    /// The `ws` table of each connection an event has seen (a registry reference), with the
    /// connection's GUID: found by the connection's identity, without a Lua string made from
    /// the GUID per event.
    var socketObjects: [ObjectIdentifier: (guid: String, reference: Int32)] = [:]
    /// The `ws` table an event was last given (its address while `socketObjects` holds it) and
    /// its connection: `ws:send` in that event finds its socket without a look-up by GUID.
    var recentSocket: (table: UnsafeRawPointer, connection: WebSocketConnection)?
    /// Open connections of this loop by GUID: `ws:send` finds its socket without the
    /// registry's lock.
    var localSockets: [String: WebSocketConnection] = [:]
    /// The keep-alive pool of plain HTTP upstreams of this VM's loop (moonwire.http), which
    /// every generation on the loop shares; nil without a loop.
    var outboundPool: OutboundHTTP1Pool?
    /// This VM's connection to Redis (moonwire.redis), made on the first call.
    var redis: RedisClient?
    /// The API keys the scripts added while they loaded, with a cluster (LuaClusterAPIKeys).
    var scriptAPIKeys: [APIKeyDigest: SharedValue] = [:]
    /// See `LuaRecentPooledRequest`.
    var recentPooledRequest = LuaRecentPooledRequest()
    /// The handler timeouts of the calls that wait.
    var deadlines = LuaCallDeadlines()
    /// moonwire.timer and moonwire.every.
    var timers = LuaTimerTable()
    /// Threads moonwire.spawn started.
    var threads = LuaThreadTable()
    /// The event streams res:sse started, by handle id.
    var eventStreams = LuaEventStreamTable()
    /// The sockets whose event waits, with the events that arrived meanwhile, by GUID.
    var socketBacklogs: [String: LuaSocketBacklog] = [:]
    /// `ws.data` tables by GUID.
    var socketData: [String: Int32] = [:]
    /// `ws.data` of the previous generation, moved in on first use.
    var importedSocketData: [String: SharedValue] = [:]
    /// Compiled moonwire.options{origins} patterns.
    var originPatterns: [Regex] = []
    /// moonwire.options{authentication} and the routes and hosts that opted in or out.
    var authentication = LuaAuthenticationRules()
    /// moonwire.options{sessions}.
    var sessions = LuaSessionRules()
    /// moonwire.options{uploads}.
    var uploads = LuaUploadRules()
    /// The handlers of routes declared with `stream_body = true`: their bodies stream to
    /// `req:read`.
    var streamBodyRoutes = Set<Int32>()
    /// The routes `moonwire.proxy` declared, in order: the route at index i is keyed in the
    /// router by `proxyRouteKey(i)`, a negative number, where a handler's key is its registry
    /// reference (positive). The match itself then tells a proxy route, where a dictionary
    /// looked up every matched request cost about 300 instructions (hashing included).
    var proxyRoutes: [LuaProxyRoute] = []

    /// Routes and virtual hosts the scripts declared; frozen once loading ends.
    let router = Router<Int32>()
    /// The series moonwire.metrics handed out (their handles' ids index it).
    var scriptSeries = ScriptSeriesTable()
    /// Each route handler's path pattern, the route label of the request metrics.
    var routePatterns: [Int32: String] = [:]
    /// Virtual hosts in declaration order (a host object in Lua holds its position here).
    var hosts: [HostID] = []
    /// HTTP/2 preload links by request path (moonwire.push_preload).
    var preloadLinks: [String: [String]] = [:]
    /// Whether this VM is one of the worker pool's (moonwire.worker).
    let isWorker: Bool
    /// Static roots of virtual hosts declared with `{www = "dir"}`.
    var hostRoots: [HostID: String] = [:]
    /// Patterns moonwire.re compiled, by flags and pattern.
    var regexCache: [String: Regex] = [:]

    var calls = LuaCallTable()
    /// Calls whose handlers returned normally, each with its coroutine, kept for the next
    /// requests: a new coroutine per request costs its allocation and, later, the collector's
    /// time to free it.
    var idleCalls: [LuaCall] = []

    /// The call whose coroutine is running now: its context is what the Lua-facing functions
    /// check, and the instruction hook charges it. Nil when no call runs (a finalizer while
    /// the VM closes). Not retained (a retain and release per request): it is set only while
    /// `resume` holds the call.
    unowned(unsafe) var runningCall: LuaCall?
    /// Instructions left for code that runs outside any call (finalizers).
    var mainInstructionsLeft = 0
    /// The CPU tick of the thread the VM runs on, which arms the instruction budget once code
    /// has run for a tick; nil when there is none, and the budget is then armed for good.
    var ticker: OpaquePointer?

    /// Creates a VM, installs the moonwire API and runs the scripts' entry point under the
    /// default limits. Throws the script's error (with `file:line`) when it does not load.
    public init(
        runtime: LuaRuntime, scripts: ScriptSnapshot, eventLoop: EventLoop?, generation: Int = 1, isWorker: Bool = false
    ) throws {
        space = .allocate(capacity: 1)
        space.initialize(to: mw_VMSpace(
            owner: nil, check: luaInstructionCheck, used: 0, limit: 0, in_swift: 1, fields: LUA_NOREF, field_tables: 0,
            hook_interval: LuaVM.hookInterval))
        space.pointee.limit = ScriptLimits().memory
        guard let state = mw_newstate(space) else {
            space.deallocate()
            throw LuaScriptError(message: "cannot create a Lua state: out of memory")
        }
        self.L = state
        self.ticker = LuaVM.joinTick(state)
        self.runtime = runtime
        self.scripts = scripts
        self.eventLoop = eventLoop
        self.generation = generation
        self.isWorker = isWorker
        space.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        applyInstructionLimit()
        luaL_openlibs(L)
        installModule()
        installObjectMetatable()
        installSocketMetatable()
        installSafeStandardLibrary()
        try installModuleLoader()
        try runEntryPoint()
        events = LuaEventRefs(globalsOf: L)
        originPatterns = settings.origins.compactMap { try? Regex($0, options: [.wholeSubject, .caseless]) }
        applyInstructionLimit()
        space.pointee.limit = settings.scriptLimits.memory
    }

    deinit {
        // A handshake still waiting (its hooks asleep while the server stops) gets an answer:
        // its connection is told no rather than left without one.
        for call in calls.live {
            call.handshake?.succeed(.refuse(.statusPage(503)))
            call.completion?(.failure(LuaScriptError(message: "the server stopped")))
        }
        for backlog in socketBacklogs.values {
            for case .heartbeat(let answer) in backlog.events { answer.succeed(false) }
        }
        deadlines.sweep?.cancel()
        redis?.close()
        leaveTick()
        lua_close(L)
        space.deallocate()
    }

    /// The VM a Lua function was called in (its pointer sits in every thread's extra space).
    static func from(_ L: LuaThread) -> LuaVM {
        owner(of: L).takeUnretainedValue()
    }

    /// The VM of `L`, unretained: for paths that borrow it instead of taking a reference.
    static func owner(of L: LuaThread) -> Unmanaged<LuaVM> {
        Unmanaged<LuaVM>.fromOpaque(mw_space(L).pointee.owner!)
    }

    /// Bytes the VM has allocated.
    public var memoryInUse: Int { space.pointee.used }

    /// Modules of the scripts folder load from the snapshot, under their display names; others
    /// (Lua libraries installed on the system) from package.path as usual.
    private func installModuleLoader() throws(LuaScriptError) {
        try load(source: LuaPrelude.moduleSearcher, name: "moonwire.require")
        L.push(luaScriptModule)
        try runChunk(arguments: 1)
    }

    private func runEntryPoint() throws(LuaScriptError) {
        try load(script: "main.lua")
        try runChunk(arguments: 0)
    }

    /// Compiles a file of the snapshot under its display name and pushes it; throws the
    /// syntax error, or that the file is missing.
    func load(script relative: String) throws(LuaScriptError) {
        guard let source = scripts.source(relative) else {
            throw LuaScriptError(message: "\(names.prefix)\(relative): not found (the entry point of the scripts folder)")
        }
        try Self.compile(source, name: names.prefix + relative, into: L)
    }

    /// Compiles `source` as the chunk `name` and pushes it; throws the syntax error.
    static func compile(_ source: [UInt8], name: String, into L: LuaThread) throws(LuaScriptError) {
        let status = source.withUnsafeBytes { bytes in
            mw_loadbuffer(L, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, "@" + name)
        }
        guard status == LUA_OK else {
            let message = L.describe(at: -1)
            mw_pop(L, 1)
            throw LuaScriptError(message: message)
        }
    }

    /// Runs the function below `arguments` values on the main stack, through the door, as a
    /// call of `event` (the scripts' load; tests name others); throws its error.
    func runChunk(arguments: Int32, as event: LuaEvent = .load) throws(LuaScriptError) {
        let result = run(event) { T in
            lua_xmove(L, T, arguments + 1)
            return arguments
        } results: { _, _ in () }
        if case .failure(let error) = result { throw error }
    }

    /// Compiles a chunk and pushes it; throws the syntax error.
    func load(source: String, name: String) throws(LuaScriptError) {
        var source = source
        let status = source.withUTF8 { bytes in
            mw_loadbuffer(L, UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), bytes.count, "=\(name)")
        }
        guard status == LUA_OK else {
            let message = L.describe(at: -1)
            mw_pop(L, 1)
            throw LuaScriptError(message: message)
        }
    }

    /// Runs a chunk of Lua source as a call of `event` (tests).
    func run(source: String, name: String, as event: LuaEvent = .onStartup) throws {
        try load(source: source, name: name)
        try runChunk(arguments: 0, as: event)
    }
}

extension LuaVM {
    /// The syntax error of a file of a snapshot, or nil when it compiles.
    static func compileError(of relative: String, in scripts: ScriptSnapshot) -> String? {
        guard let L = luaL_newstate() else { return "cannot create a Lua state: out of memory" }
        defer { lua_close(L) }
        do {
            try compile(scripts.source(relative) ?? [], name: scripts.names.prefix + relative, into: L)
            return nil
        } catch {
            return error.message
        }
    }
}

/// The module searcher's lookup in the snapshot: `(name)` → the module's source and its
/// display name, or nothing when the scripts folder has no such module.
private let luaScriptModule: LuaFunction = { L in
    let L = L!
    guard let name = L.string(at: 1) else { return 0 }
    let scripts = LuaVM.from(L).scripts
    guard let relative = scripts.module(named: name), let source = scripts.source(relative) else { return 0 }
    L.push(bytes: source)
    L.push(scripts.names.prefix + relative)
    return 2
}
