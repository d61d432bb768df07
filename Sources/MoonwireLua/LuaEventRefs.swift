// The event functions a loaded script tree defines, looked up once per load.
import CLua

/// Registry references to the script's event handlers (LUA_NOREF when absent).
struct LuaEventRefs {
    var dispatcher: Int32 = LUA_NOREF
    /// The dispatcher's handlers, for requests that need nothing else of it: with no
    /// OnBeforeCommand, a request that matched a route, or none, is handed to its handler
    /// directly (the dispatcher's own instructions are a good part of a small handler's cost).
    var onBeforeCommand: Int32 = LUA_NOREF
    /// OnCommandGet, else OnHTTPRequest: for GET, HEAD and POST.
    var onCommandGet: Int32 = LUA_NOREF
    /// OnCommandOther, else OnHTTPRequest: for the other methods.
    var onCommandOther: Int32 = LUA_NOREF
    var onStartup: Int32 = LUA_NOREF
    var onShutdown: Int32 = LUA_NOREF
    var onTCPConnect: Int32 = LUA_NOREF
    var onError: Int32 = LUA_NOREF
    var onException: Int32 = LUA_NOREF
    var onALPNSelect: Int32 = LUA_NOREF
    var onVerifyPeer: Int32 = LUA_NOREF
    var onBeforeAsyncRequest: Int32 = LUA_NOREF

    init() {}

    /// Looks up the globals of the VM's loaded scripts and builds the request dispatcher.
    init(loadingFrom vm: LuaVM) throws(LuaScriptError) {
        let L = vm.L
        func reference(_ name: String) -> Int32 {
            guard lua_getglobal(L, name) == LUA_TFUNCTION else {
                mw_pop(L, 1)
                return LUA_NOREF
            }
            return luaL_ref(L, mw_registryindex())
        }
        onStartup = reference("OnStartup")
        onShutdown = reference("OnShutdown")
        onTCPConnect = reference("OnTCPConnect")
        onError = reference("OnError")
        onException = reference("OnException")
        onALPNSelect = reference("OnSSLALPNSelect")
        onVerifyPeer = reference("OnSSLVerifyPeer")
        onBeforeAsyncRequest = reference("OnHTTP2BeforeAsyncRequest")
        onBeforeCommand = reference("OnBeforeCommand")
        let onHTTPRequest = reference("OnHTTPRequest")
        onCommandGet = reference("OnCommandGet")
        if onCommandGet == LUA_NOREF { onCommandGet = onHTTPRequest }
        onCommandOther = reference("OnCommandOther")
        if onCommandOther == LUA_NOREF { onCommandOther = onHTTPRequest }
        try vm.load(source: LuaPrelude.dispatcher, name: "moonwire.dispatcher")
        mw_pushglobaltable(L)
        try vm.protectedCall(arguments: 1, results: 1)
        dispatcher = luaL_ref(L, mw_registryindex())
    }
}
