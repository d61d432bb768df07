-- A syntax error on line 4.
local a = 1

local b = = 2

function OnCommandGet(req, res) res:send("x") end
