-- Handlers that do not answer (no send/json/redirect/file, no res.status): static files for
-- GET/HEAD, 404 for everything else. Setting only res.status answers with an empty body.
function OnCommandGet(req, res)
  res:header("X-Handler", "get-ran")
  if req.path == "/status-only" then
    res.status = 404
  elseif req.path == "/status-410" then
    res.status = 410
  end
end

function OnCommandOther(req, res)
  res:header("X-Handler", "other-ran")
end
