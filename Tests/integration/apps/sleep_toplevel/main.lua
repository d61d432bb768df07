-- An unprotected moonwire.sleep at the top level: loading fails with file:line.
moonwire.sleep(0.1)

function OnCommandGet(req, res) res:send("never served") end
