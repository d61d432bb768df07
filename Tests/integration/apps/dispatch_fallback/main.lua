-- Only OnHTTPRequest: it answers every method.
function OnHTTPRequest(req, res)
  res:header("X-Via", "fallback")
  res:send("fallback " .. req.method)
end
