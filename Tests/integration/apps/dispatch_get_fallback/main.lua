-- OnCommandGet present, OnCommandOther absent: other methods go to OnHTTPRequest.
function OnCommandGet(req, res)
  res:header("X-Via", "get")
  res:send("get " .. req.method)
end

function OnHTTPRequest(req, res)
  res:header("X-Via", "fallback")
  res:send("fallback " .. req.method)
end
