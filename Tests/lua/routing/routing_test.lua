-- Routes and virtual hosts through moonwire test (the cases of test_routing.py that need only
-- requests and answers; slow patterns and reloads stay there).

function test_path_captures_named_and_numbered(t)
  t.eq(t.get("/users/42").json, { id = "42", first = "42" })
  t.eq(t.get("/users/abc").status, 404)
end

function test_method_sets_and_405(t)
  t.eq(t.request{ method = "POST", path = "/items/box" }.body, "POST box")
  t.eq(t.request{ method = "PUT", path = "/items/box" }.body, "PUT box")
  t.eq(t.get("/items/box").body, "get box")
  local patch = t.request{ method = "PATCH", path = "/items/box" }
  t.eq(patch.status, 405)
  t.eq(patch.headers.allow, "GET, HEAD, POST, PUT")
  local delete_only = t.get("/only-delete")
  t.eq({ delete_only.status, delete_only.headers.allow }, { 405, "DELETE" })
  t.eq(t.request{ method = "DELETE", path = "/only-delete" }.status, 204)
  t.eq(t.request{ method = "OPTIONS", path = "/opt" }.status, 204)
end

function test_head_falls_back_to_get(t)
  local r = t.request{ method = "HEAD", path = "/users/7" }
  t.eq(r.status, 200)
  t.eq(r.body, "")
  t.ok(tonumber(r.headers["content-length"]) > 0)
end

function test_first_registered_route_wins(t)
  t.eq(t.get("/files/special").body, "wide")
end

function test_unrouted_paths_reach_handlers_then_static_then_404(t)
  t.eq(t.get("/handled").body, "OnCommandGet after routes")
  t.match(t.get("/").body, "home page")
  t.eq(t.get("/nothing-here").status, 404)
end

function test_virtual_host_captures_port_and_case(t)
  t.eq(t.get("/whoami/5", { host = "ACME.example.com:8080" }).json, { tenant = "ACME", n = "5", host_number = "ACME" })
  -- the default host's routes do not apply on a matched virtual host
  t.eq(t.get("/users/1", { host = "acme.example.com" }).status, 404)
  -- a Host that matches no virtual host uses the default host
  t.eq(t.get("/users/1", { host = "other.org" }).status, 200)
  t.eq(t.get("/whoami/5", { host = "other.org" }).status, 404)
  t.eq(t.get("/v6", { host = "[::1]:8080" }).body, "ipv6 literal host")
end
