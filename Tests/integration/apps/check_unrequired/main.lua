-- main.lua is fine and requires nothing; extra/orphan.lua is never required but is
-- compiled by `moonwire check` (it checks every .lua file under the folder).
function OnCommandGet(req, res) res:send("x") end
