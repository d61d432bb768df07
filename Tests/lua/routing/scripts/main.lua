-- Routes and virtual hosts (docs/routing.md), the app of routing_test.lua.
moonwire.get([[/users/(?<id>\d+)]], function(req, res) res:json({id = req.params.id, first = req.params[1]}) end)
moonwire.route("POST|PUT", [[/items/(\w+)]], function(req, res) res:send(req.method .. " " .. req.params[1]) end)
moonwire.get([[/items/(\w+)]], function(req, res) res:send("get " .. req.params[1]) end)
moonwire.delete("/only-delete", function(req, res) res.status = 204 end)
moonwire.get("/files/.*", function(req, res) res:send("wide") end)
moonwire.get("/files/special", function(req, res) res:send("never: the wide route came first") end)
moonwire.get("/slow/(a+)+b", function(req, res) res:send("matched") end)
moonwire.options("/opt", function(req, res) res:header("Allow", "GET, OPTIONS"); res.status = 204 end)

local tenant = moonwire.vhost([[(?<tenant>[a-z]+)\.example\.com]])
tenant:get([[/whoami/(\d+)]], function(req, res)
  res:json({tenant = req.params.tenant, n = req.params[1], host_number = req.params[2]})
end)
local v6 = moonwire.vhost([=[\[::1\]]=])
v6:get("/v6", function(req, res) res:send("ipv6 literal host") end)

function OnCommandGet(req, res)
  if req.path == "/handled" then res:send("OnCommandGet after routes") end
end
function OnCommandOther(req, res) end
