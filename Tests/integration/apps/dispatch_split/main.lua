-- OnCommandGet and OnCommandOther both present: OnHTTPRequest must never be called.
function OnCommandGet(req, res)
  res:header("X-Via", "get")
  res:send("get " .. req.method)
end

function OnCommandOther(req, res)
  res:header("X-Via", "other")
  res:send("other " .. req.method)
end

function OnHTTPRequest(req, res)
  res:header("X-Via", "fallback")
  res:send("fallback " .. req.method)
end
