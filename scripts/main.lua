-- The default Moonwire app: what `make run` serves on http://127.0.0.1:8080.
--
-- Every global function named On... is an event the server calls; all are optional and are
-- looked up once, when the scripts load. Other files are loaded with require, relative to
-- this folder: "app.hello" is scripts/app/hello.lua. docs/lua-api.md lists the whole Lua API.

local hello = require "app.hello"
local chat = require "app.chat"
local events = require "app.events"

-- Settings are made at the top level, while the scripts load. The default body limit is
-- 8 MiB; this demo only needs small ones (a larger body is answered with 413).
moonwire.options{ limits = { max_body_size = 1024 * 1024 } }

-- Once, after the server listens.
function OnStartup()
  moonwire.log.info("demo app ready: try /hello, /api/time, /sleep and /echo")
end

-- Once, when the server stops (Ctrl-C or SIGTERM).
function OnShutdown()
  moonwire.log.info("demo app stopping")
end

-- Every request passes here first. Headers set here are kept on every response, static
-- files included. Returning true would end the request with whatever res holds.
function OnBeforeCommand(req, res)
  res:header("x-served-by", "moonwire demo app")
end

-- GET, HEAD and POST. A handler that neither sends anything nor sets res.status leaves the
-- request to the static files in www/: that is how / serves www/index.html.
function OnCommandGet(req, res)
  local handler = hello.routes[req.path] or events.routes[req.path]
  if handler then
    handler(req, res)
  end
end

-- Every other method (PUT, DELETE, PATCH...). Unanswered, they get 404.
function OnCommandOther(req, res)
  if req.path == "/echo" then
    hello.routes["/echo"](req, res)
  end
end

-- A Lua error escaped a handler. The client already gets a 500 (with --dev: the message,
-- the traceback and the source around the failing line) and the server keeps serving.
function OnException(err, req)
  moonwire.log.warn("handler error on " .. req.method .. " " .. req.path .. ": " .. err.message)
end

-- WebSocket: the chat demo at /chat (www/chat.html is its page).
function OnHandshake(req, res)
  if req.path ~= "/chat" then res.status = 404 end
end
function OnConnect(ws) chat.connect(ws) end
function OnMessage(ws, text) chat.message(ws, text) end
function OnDisconnect(ws) chat.disconnect(ws) end
