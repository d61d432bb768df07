-- The server-sent events demo: www/sse.html listens with EventSource. Its /sse/chat stream is
-- in the "chat" channel, so it shows what the WebSocket chat (www/chat.html) says and what is
-- POSTed to /sse/publish: one moonwire.broadcast reaches both kinds of clients. /sse/count
-- shows how a browser resumes a stream the server closed, with Last-Event-ID.
local M = { routes = {} }
local routes = M.routes

-- GET /sse/chat: a stream that lives on after the handler returns, fed by the channel.
routes["/sse/chat"] = function(req, res)
  local sse = res:sse()
  sse:send{ event = "hello", data = "listening to the chat channel" }
  sse:subscribe("chat")
end

-- POST /sse/publish (body: the text): a message for every chat client, WebSocket or SSE.
routes["/sse/publish"] = function(req, res)
  if req.method ~= "POST" or req.body == "" then
    res.status = 400
    return res:send("POST the message as the body\n")
  end
  local reached = moonwire.broadcast(moonwire.json.encode({ from = "http", text = req.body }),
                                     { channel = "chat" })
  res:json{ reached = reached }
end

-- GET /sse/count: counts to 9, three numbers per connection. The server closes the stream
-- after each third; the browser reconnects (after `retry` ms) with the id of the last event
-- it saw as Last-Event-ID, and the count goes on from there.
routes["/sse/count"] = function(req, res)
  local last = tonumber(req:header("last-event-id")) or 0
  local sse = res:sse()
  sse:send{ retry = 200, event = "resumed", data = tostring(last) }
  for n = last + 1, math.min(last + 3, 9) do
    moonwire.sleep(0.1)
    if not sse:send{ id = tostring(n), data = tostring(n) } then return end
  end
  if last + 3 >= 9 then sse:send{ event = "done", data = "9" } end
  sse:close()
end

return M
