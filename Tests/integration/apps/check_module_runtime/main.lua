-- main.lua is fine; the module it requires raises an error while loading (line 4).
local failing = require "lib.failing"

function OnCommandGet(req, res) res:send("x") end
