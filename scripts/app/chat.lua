-- The chat demo: www/chat.html connects to /chat over
-- WebSocket; each message goes to everyone in the room. Nicknames live in ws.data, which
-- survives a reload of these scripts.
local chat = {}

local function announce(text, except)
  moonwire.broadcast(moonwire.json.encode({ system = true, text = text }),
                     { channel = "chat", exclude = except and { except } or nil })
end

function chat.connect(ws)
  ws.data.nick = "guest-" .. ws.guid:sub(1, 4)
  ws:subscribe("chat")
  ws:send(moonwire.json.encode({ system = true, text = "you are " .. ws.data.nick }))
  announce(ws.data.nick .. " joined", ws.guid)
end

function chat.message(ws, text)
  local nick = text:match("^/nick%s+([%w_%-]+)$")
  if nick then
    announce(ws.data.nick .. " is now " .. nick)
    ws.data.nick = nick
    return
  end
  moonwire.broadcast(moonwire.json.encode({ from = ws.data.nick, text = text }), { channel = "chat" })
end

function chat.disconnect(ws)
  if ws.data.nick then announce(ws.data.nick .. " left") end
end

return chat
