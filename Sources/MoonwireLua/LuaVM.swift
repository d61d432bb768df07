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
    let eventLoop: EventLoop?
    /// Which load of the scripts this VM is (1 for the first, +1 per reload).
    public let generation: Int
    /// Called when the VM has no call in progress any more, so a replaced generation can close.
    var onIdle: (() -> Void)?

    var scriptsDirectory: String { runtime.scriptsDirectory }
    var logger: Logger { runtime.logger }
    var developmentMode: Bool { runtime.developmentMode }
    var faults: FaultCounters { runtime.faults }
    var names: ScriptNames { ScriptNames(directory: runtime.scriptsDirectory) }

    /// Settings the scripts made while loading.
    public internal(set) var settings = ScriptSettings()

    var events = LuaEventRefs()
    var tracebackRef: Int32 = LUA_NOREF
    var hostMetatableRef: Int32 = LUA_NOREF
    var socketMetatableRef: Int32 = LUA_NOREF
    /// `ws` tables by GUID (a registry reference to a Lua table).
    var socketTablesRef: Int32 = LUA_NOREF
    /// Open connections of this loop by GUID: `ws:send` finds its socket without the
    /// registry's lock.
    var localSockets: [String: WebSocketConnection] = [:]
    /// `ws.data` tables by GUID.
    var socketData: [String: Int32] = [:]
    /// `ws.data` of the previous generation, moved in on first use.
    var importedSocketData: [String: SharedValue] = [:]
    /// Compiled moonwire.options{origins} patterns.
    var originPatterns: [Regex] = []

    /// Routes and virtual hosts the scripts declared; frozen once loading ends.
    let router = Router<Int32>()
    /// Virtual hosts in declaration order (a host object in Lua holds its position here).
    var hosts: [HostID] = []
    /// HTTP/2 preload links by request path (moonwire.push_preload).
    var preloadLinks: [String: [String]] = [:]
    /// Whether this VM is one of the worker pool's (moonwire.worker).
    let isWorker: Bool
    /// Static roots of virtual hosts declared with `{www = "dir"}`.
    var hostRoots: [HostID: String] = [:]
    /// True while the scripts load: the only time routes may be declared.
    var isLoading = true
    /// Patterns moonwire.re compiled, by flags and pattern.
    var regexCache: [String: Regex] = [:]

    var calls = LuaCallTable()
    /// Calls whose handlers returned normally, each with its coroutine, kept for the next
    /// requests: a new coroutine per request costs its allocation and, later, the collector's
    /// time to free it.
    var idleCalls: [LuaHandlerCall] = []

    /// The handler call whose coroutine is running now, charged by the instruction hook;
    /// nil while top-level code or a synchronous event runs on the main thread. Not retained
    /// (a retain and release per request): it is set only while `resume` holds the call.
    unowned(unsafe) var runningCall: LuaHandlerCall?
    /// Instructions left for the code running on the main thread.
    var mainInstructionsLeft = 0
    /// The CPU tick of the thread the VM runs on, which arms the instruction budget once code
    /// has run for a tick; nil when there is none, and the budget is then armed for good.
    let ticker: OpaquePointer?

    /// Creates a VM, installs the moonwire API and runs the scripts' entry point under the
    /// default limits. Throws the script's error (with `file:line`) when it does not load.
    public init(runtime: LuaRuntime, eventLoop: EventLoop?, generation: Int = 1, isWorker: Bool = false) throws {
        space = .allocate(capacity: 1)
        space.initialize(to: mw_VMSpace(
            owner: nil, check: luaInstructionCheck, used: 0, limit: 0, in_swift: 0, fields: LUA_NOREF, field_tables: 0,
            hook_interval: LuaVM.hookInterval))
        space.pointee.limit = ScriptLimits().memory
        guard let state = mw_newstate(space) else {
            space.deallocate()
            throw LuaScriptError(message: "cannot create a Lua state: out of memory")
        }
        self.L = state
        self.ticker = LuaVM.joinTick(state)
        self.runtime = runtime
        self.eventLoop = eventLoop
        self.generation = generation
        self.isWorker = isWorker
        space.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        applyInstructionLimit()
        luaL_openlibs(L)
        try load(source: LuaPrelude.errorHandler, name: "moonwire.errors")
        guard mw_pcall(L, 0, 1, 0) == LUA_OK else { throw LuaScriptError(message: L.describe(at: -1)) }
        tracebackRef = luaL_ref(L, mw_registryindex())
        installModule()
        installObjectMetatable()
        installSocketMetatable()
        installSafeStandardLibrary()
        try installModuleLoader()
        try runEntryPoint()
        events = try LuaEventRefs(loadingFrom: self)
        isLoading = false
        originPatterns = settings.origins.compactMap { try? Regex($0, options: [.wholeSubject, .caseless]) }
        applyInstructionLimit()
        space.pointee.limit = settings.scriptLimits.memory
    }

    deinit {
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

    /// Modules load from the scripts folder first, under their display names.
    private func installModuleLoader() throws(LuaScriptError) {
        lua_getglobal(L, "package")
        L.push("\(scriptsDirectory)/?.lua;\(scriptsDirectory)/?/init.lua;")
        lua_getfield(L, -2, "path")
        lua_concat(L, 2)
        L.setField(-2, "path")
        mw_pop(L, 1)
        try load(source: LuaPrelude.moduleSearcher, name: "moonwire.require")
        L.push(names.directory)
        L.push(names.prefix)
        try protectedCall(arguments: 2, results: 0)
    }

    private func runEntryPoint() throws(LuaScriptError) {
        try loadFile("\(scriptsDirectory)/main.lua")
        try protectedCall(arguments: 0, results: 0)
    }

    /// Compiles a script file under its display name and pushes it; throws the syntax error.
    func loadFile(_ path: String) throws(LuaScriptError) {
        try Self.loadFile(path, names: names, into: L)
    }

    static func loadFile(_ path: String, names: ScriptNames, into L: LuaThread) throws(LuaScriptError) {
        guard let source = ScriptNames.source(ofFile: path) else {
            throw LuaScriptError(message: "\(names.displayName(path)): cannot read the file")
        }
        let status = source.withUnsafeBytes { bytes in
            mw_loadbuffer(L, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, "@" + names.displayName(path))
        }
        guard status == LUA_OK else {
            let message = L.describe(at: -1)
            mw_pop(L, 1)
            throw LuaScriptError(message: message)
        }
    }

    /// Calls the function below `arguments` values on the main stack with a traceback handler.
    /// Leaves `results` values on success; on failure leaves nothing and throws.
    func protectedCall(arguments: Int32, results: Int32) throws(LuaScriptError) {
        mainInstructionsLeft = settings.scriptLimits.instructions
        let functionIndex = lua_gettop(L) - arguments
        lua_rawgeti(L, mw_registryindex(), lua_Integer(tracebackRef))
        mw_insert(L, functionIndex)
        let status = mw_pcall(L, arguments, results, functionIndex)
        applyInstructionLimit()
        if status != LUA_OK {
            var error = scriptError(at: -1)
            if status == LUA_ERRMEM {
                error = LuaScriptError(message: "not enough memory (the VM's cap is \(space.pointee.limit) bytes)", kind: .memory)
            } else if mainInstructionsLeft < 0 {
                error.kind = .cpuBudget
            }
            faults.record(error.kind)
            mw_pop(L, 2)
            throw error
        }
        mw_remove(L, functionIndex)
    }

    /// Reads an error value: the `{message=, traceback=}` table of the error handler, or any
    /// other value (a coroutine's raw error) as its message.
    func scriptError(at index: Int32, thread: LuaThread? = nil) -> LuaScriptError {
        let T = thread ?? L
        guard T.type(at: index) == LUA_TTABLE else { return LuaScriptError(message: T.describe(at: index)) }
        lua_getfield(T, index, "message")
        lua_getfield(T, index < 0 ? index - 1 : index, "traceback")
        let error = LuaScriptError(message: T.string(at: -2) ?? "?", traceback: T.string(at: -1) ?? "")
        mw_pop(T, 2)
        return error
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

    /// Runs a chunk of Lua source at top level (tests and tools).
    public func run(source: String, name: String) throws {
        try load(source: source, name: name)
        try protectedCall(arguments: 0, results: 0)
    }
}

extension LuaVM {
    /// The syntax error of a file, or nil when it compiles.
    static func compileError(file: String, names: ScriptNames) -> String? {
        guard let L = luaL_newstate() else { return "cannot create a Lua state: out of memory" }
        defer { lua_close(L) }
        do {
            try loadFile(file, names: names, into: L)
            return nil
        } catch {
            return error.message
        }
    }
}
