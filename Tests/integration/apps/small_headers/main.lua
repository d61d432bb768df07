-- max_header_size set from the script (bytes).
moonwire.options{ limits = { max_header_size = 4096 } }

local dir = assert(os.getenv("MOONWIRE_TEST_DIR"), "MOONWIRE_TEST_DIR is not set")

function OnError(conn, message)
  local f = assert(io.open(dir .. "/errors.log", "a"))
  f:write("x | ", (tostring(message):gsub("\n", " ")), "\n")
  f:close()
end

function OnCommandGet(req, res) res:send("small ok") end
