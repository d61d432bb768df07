-- The demo's pages, keyed by path. `require "app.pages"` finds this file under scripts/.
local pages = {}

pages["/hello"] = function(req, res)
  res:send("Hello from Lua! You asked for " .. req.path .. " over HTTP/" .. req.version .. "\n")
end

pages["/api/time"] = function(req, res)
  res:json({ time = os.time(), date = os.date("!%Y-%m-%dT%H:%M:%SZ"), visits = moonwire.shared:incr("visits") })
end

-- Waiting never blocks the server: other requests are answered meanwhile.
pages["/sleep"] = function(req, res)
  local seconds = tonumber(req.query.seconds) or 0.5
  moonwire.sleep(math.min(seconds, 5))
  res:send(string.format("Slept %.1f s without blocking anyone.\n", math.min(seconds, 5)))
end

pages["/echo"] = function(req, res)
  res:json({ method = req.method, query = req.query, body = req.body, headers = req.headers })
end

return pages
