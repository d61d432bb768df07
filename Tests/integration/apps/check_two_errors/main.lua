-- two broken files: both errors are printed
local x = = 1
function OnCommandGet(req, res) res:send("x") end
