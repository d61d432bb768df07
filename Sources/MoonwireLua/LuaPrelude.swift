// Lua source the VM runs around user scripts: the request dispatcher (the order of the HTTP
// events, as in sgcWebSockets) and the error handler that captures tracebacks.

enum LuaPrelude {
    /// Returns a message handler for pcall/resume errors: `{message=, traceback=}`.
    static let errorHandler = """
        local traceback, tostring = debug.traceback, tostring
        return function(e)
          return { message = tostring(e), traceback = (traceback("", 2):gsub("^\\n", "")) }
        end
        """

    /// Given the globals, returns `dispatch(req, res, get_like, route, allow)`, which runs
    /// OnBeforeCommand, then the matched route, or 405 when only other methods match, or
    /// else OnCommandGet (GET, HEAD, POST) or OnCommandOther, with OnHTTPRequest as the
    /// fallback of both. Returns true when OnBeforeCommand answered. Handlers are looked up
    /// once, here.
    static let dispatcher = """
        local G = ...
        local function fn(name) local f = rawget(G, name); return type(f) == "function" and f or nil end
        local before, any = fn("OnBeforeCommand"), fn("OnHTTPRequest")
        local get, other = fn("OnCommandGet") or any, fn("OnCommandOther") or any
        return function(req, res, get_like, route, allow)
          if before and before(req, res) == true then return true end
          if route then route(req, res) return false end
          if allow then
            res.status = 405
            res:header("Allow", allow)
            res:send("405 Method Not Allowed\\n")
            return false
          end
          local handler = get_like and get or other
          if handler then handler(req, res) end
          return false
        end
        """


    /// In development mode, wraps the standard functions that block an event loop so each
    /// call site is reported once.
    static let blockingCallWarnings = """
        local warn, seen = moonwire.log.warn, {}
        local function wrap(lib, name)
          local original = _G[lib][name]
          _G[lib][name] = function(...)
            local info = debug.getinfo(2, "Sl")
            local where = info and (info.short_src .. ":" .. (info.currentline or 0)) or "?"
            if not seen[where] then
              seen[where] = true
              warn(lib .. "." .. name .. " blocks the event loop (every client on it waits) at " .. where)
            end
            return original(...)
          end
        end
        for _, n in ipairs({"read", "lines", "popen", "input"}) do wrap("io", n) end
        wrap("os", "execute")
        """

    /// Replaces Lua's file searcher so modules are named like main.lua in errors.
    static let moduleSearcher = """
        local dir, prefix = ...
        local searchpath, open, load, format = package.searchpath, io.open, load, string.format
        package.searchers[2] = function(name)
          local path, err = searchpath(name, package.path)
          if not path then return "\\n\\t" .. err end
          local file = assert(open(path, "rb"))
          local source = file:read("a")
          file:close()
          if source:sub(1, 1) == "#" then source = "--" .. source end
          local display = path:sub(1, #dir + 1) == dir .. "/" and prefix .. path:sub(#dir + 2) or path
          local chunk, problem = load(source, "@" .. display)
          if not chunk then
            error(format("error loading module '%s' from file '%s':\\n\\t%s", name, display, problem), 2)
          end
          return chunk, path
        end
        """
}
