-- HTTP/1.1 behaviour and the bad-input cases. Small limits so the suite stays fast.
moonwire.options{ limits = {
  max_body_size = 1024,     -- bytes
  header_timeout = 1,       -- seconds: header block complete / longest silence in a body
  keepalive_timeout = 2,    -- seconds: idle keep-alive connection closed silently
  send_timeout = 2,         -- seconds: a client that takes none of its answers is closed
} }

local dir = assert(os.getenv("MOONWIRE_TEST_DIR"), "MOONWIRE_TEST_DIR is not set")

local function record(name, line)
  local f = assert(io.open(dir .. "/" .. name, "a"))
  f:write(line, "\n")
  f:close()
end

function OnError(conn, message)
  local ip = type(conn) == "table" and tostring(conn.remote_ip) or type(conn)
  record("errors.log", ip .. " | " .. (tostring(message):gsub("\n", " ")))
end

local function handle(req, res)
  if req.path == "/sleep" then
    moonwire.sleep(tonumber(req.query.s) or 1)
  end
  res:header("X-Remote-Port", tostring(req.remote_port))
  res:header("X-Version", req.version)
  res:send(req.method .. " " .. req.path .. " " .. #req.body .. ":" .. req.body)
end

function OnCommandGet(req, res) handle(req, res) end
function OnCommandOther(req, res) handle(req, res) end
