// Lua source the VM runs around user scripts: the module searcher that names modules as
// main.lua is named in errors, and the development mode's warnings about blocking calls.

enum LuaPrelude {
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

    /// Replaces Lua's file searcher: modules of the scripts folder come from the generation's
    /// snapshot (`find`, a Swift function), named like main.lua in errors; others from
    /// package.path.
    static let moduleSearcher = """
        local find = ...
        local searchpath, open, load, format = package.searchpath, io.open, load, string.format
        local function compile(name, source, display)
          local chunk, problem = load(source, "@" .. display)
          if not chunk then
            error(format("error loading module '%s' from file '%s':\\n\\t%s", name, display, problem), 3)
          end
          return chunk, display
        end
        package.searchers[2] = function(name)
          local source, display = find(name)
          if source then return compile(name, source, display) end
          local path, err = searchpath(name, package.path)
          if not path then return "\\n\\tno module '" .. name .. "' in the scripts folder" .. err end
          local file = assert(open(path, "rb"))
          source = file:read("a")
          file:close()
          if source:sub(1, 1) == "#" then source = "--" .. source end
          return compile(name, source, path)
        end
        """
}
