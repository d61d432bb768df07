-- Event functions are looked up once per load: defining or replacing a global event function
-- from a handler changes nothing.
function OnCommandGet(req, res)
  if req.path == "/define" then
    OnCommandOther = function(req2, res2) res2:send("late other") end
    OnHTTPRequest = function(req2, res2) res2:send("late fallback") end
    OnCommandGet = function(req2, res2) res2:send("replaced get") end
    res:send("defined")
    return
  end
  res:send("original get")
end
