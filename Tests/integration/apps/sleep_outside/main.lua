-- moonwire.sleep at the top level raises an error; in OnTCPConnect and in a handler it waits.
local dir = assert(os.getenv("MOONWIRE_TEST_DIR"), "MOONWIRE_TEST_DIR is not set")

local function record(name, line)
  local f = assert(io.open(dir .. "/" .. name, "a"))
  f:write(line, "\n")
  f:close()
end

local top_ok, top_err = pcall(moonwire.sleep, 0.01)
local top_level = { ok = top_ok, err = tostring(top_err), err_type = type(top_err) }

function OnTCPConnect(conn)
  local ok, err = pcall(moonwire.sleep, 0.01)
  record("tcp_sleep.log", tostring(ok) .. " | " .. tostring(err))
end

function OnCommandGet(req, res)
  if req.path == "/inside" then
    local ok, err = pcall(moonwire.sleep, 0.05)
    res:json({ ok = ok, err = tostring(err) })
  else
    res:json({ top_level_ok = top_level.ok, top_level_err = top_level.err,
               top_level_err_type = top_level.err_type })
  end
end
