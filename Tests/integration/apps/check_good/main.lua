-- A correct app: main.lua requires a module under the scripts folder.
local util = require "lib.util"

moonwire.options{ limits = { max_body_size = 4096 } }

function OnCommandGet(req, res)
  res:send(util.greet(req.query.name or "world"))
end
