moonwire.options{
  origins = { [[https?://(www\.)?example\.com]] },
  websocket = { max_message_size = 20 * 1024 * 1024, send_queue_limit = 1024 * 1024 },
}
events = {}
local function note(text) events[#events + 1] = text end

function OnHandshake(req, res)
  if req.path == "/refuse" then res.status = 403; res:send("no") return end
  local offered = req:header("Sec-WebSocket-Protocol")
  if offered and offered:find("chat") then res:header("Sec-WebSocket-Protocol", "chat") end
end

function OnConnect(ws) note("connect " .. ws.remote_ip); ws.data.count = 0 end

function OnMessage(ws, text)
  ws.data.count = ws.data.count + 1
  local command, argument = text:match("^(%w+) ?(.*)$")
  if command == "join" then ws:subscribe(argument); ws:send("joined " .. argument)
  elseif command == "leave" then ws:unsubscribe(argument); ws:send("left " .. argument)
  elseif command == "say" then
    local channel, words = argument:match("^(%S+) (.*)$")
    ws:send("sent " .. moonwire.broadcast(words, {channel = channel, exclude = {ws.guid}}))
  elseif command == "all" then ws:send("sent " .. moonwire.broadcast(argument))
  elseif command == "me" then ws:send(json_me(ws))
  elseif command == "write" then
    local guid, words = argument:match("^(%S+) (.*)$")
    ws:send(tostring(moonwire.write(guid, words)))
  elseif command == "list" then ws:send(moonwire.json.encode(moonwire.connections()))
  elseif command == "close" then ws:close(4001, "asked to")
  elseif command == "events" then ws:send(table.concat(events, ","))
  elseif command == "flood" then
    local chunk = string.rep("x", 65536)
    for i = 1, 200 do ws:send(chunk) end
  elseif command == "size" then ws:send("size " .. #argument)
  else ws:send(text) end
end

function json_me(ws)
  return moonwire.json.encode({guid = ws.guid, protocol = ws.protocol, count = ws.data.count,
                               agent = ws.headers["user-agent"]})
end

function OnBinary(ws, data) ws:send_binary(data) end
function OnDisconnect(ws, code, reason) note("disconnect " .. code .. " " .. reason) end
function OnError(conn, message) note("error") end
