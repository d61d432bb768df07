-- OnCommandOther present, OnCommandGet absent: GET/HEAD/POST go to OnHTTPRequest.
function OnCommandOther(req, res)
  res:header("X-Via", "other")
  res:send("other " .. req.method)
end

function OnHTTPRequest(req, res)
  res:header("X-Via", "fallback")
  res:send("fallback " .. req.method)
end
