-- Static files from --www when no handler answers; headers set before are kept.
function OnBeforeCommand(req, res)
  res:header("X-Before", "before-value")
end

function OnCommandGet(req, res)
  res:header("X-Handler", "handler-value")
  if req.path == "/dynamic" then
    res:send("dynamic answer")
  end
end
