-- main.lua itself is fine; the module it requires has a syntax error (line 3).
local broken = require "lib.broken"

function OnCommandGet(req, res) res:send("x") end
