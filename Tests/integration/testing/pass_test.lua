-- Every part of moonwire.testing, passing (test_testing_harness.py runs it against
-- apps/testing_app with www/).
local testing = require "moonwire.testing"

function test_assertions_pass(t)
  t.eq(testing, t)
  t.eq({ a = { 1, 2, { b = "c" } } }, { a = { 1, 2, { b = "c" } } })
  t.ok(1)
  t.match("hello world", [[^hel+o\s\w+$]])
  local err = t.raises(function() error("boom 42") end, [[boom \d+]])
  t.match(err, "boom")
end

function test_request_path(t)
  local r = t.get("/hello")
  t.eq(r.status, 200)
  t.eq(r.body, "hello\n")
  t.eq(r.headers["x-before"], "yes")
  t.eq(t.get("/blocked").status, 403)
end

function test_http2_when_asked(t)
  t.eq(t.get("/version").body, "1.1")
  local r = t.get("/version", { http2 = true })
  t.eq({ r.status, r.body, r.headers["x-before"] }, { 200, "2", "yes" })
  t.eq(t.post("/echo", { a = 1 }, { http2 = true }).json.body, { a = 1 })
  t.eq(t.get("/private", { http2 = true, headers = { Authorization = "Basic YWRhOnNlY3JldA==" } }).body, "hi ada")
end

function test_authentication(t)
  t.eq(t.get("/private").status, 401)
  local r = t.get("/private", { headers = { Authorization = "Basic YWRhOnNlY3JldA==" } })
  t.eq(r.status, 200)
  t.eq(r.body, "hi ada")
end

function test_virtual_host(t)
  t.eq(t.get("/hello", { host = "api.example.com" }).body, "api hello\n")
end

function test_static_file(t)
  local r = t.get("/index.html")
  t.eq(r.status, 200)
  t.match(r.body, "home page")
  t.eq(r.headers["x-before"], "yes")
  t.eq(t.get("/missing.html").status, 404)
end

function test_json_post(t)
  local r = t.post("/echo", { name = "Ada", tags = { "x", "y" } })
  t.eq(r.status, 200)
  t.eq(r.json, { method = "POST", body = { name = "Ada", tags = { "x", "y" } }, type = "application/json" })
  t.eq(t.request{ method = "post", path = "/echo", body = "[1,2]", headers = { ["Content-Type"] = "text/plain" } }.json.body, { 1, 2 })
end

function test_websocket_round_trip(t)
  local ws = t.websocket("/ws")
  ws:send("hi")
  t.eq(ws:receive(), "echo: hi")
  ws:send("again")
  t.eq(ws:receive(), "echo: again")
  ws:send_binary("\0\1\255")
  t.eq(ws:receive(), "\0\1\255")
  ws:close()
  t.eq({ ws:receive() }, { nil, "closed" })
  t.raises(function() t.websocket("/elsewhere") end, "status 404")
end

function test_session_timeout(t)
  t.eq(t.get("/visits").json.n, 1)
  t.eq(t.get("/visits").json.n, 2)
  t.advance(1799)
  t.eq(t.get("/visits").json.n, 3)
  t.advance(1801)
  t.eq(t.get("/visits").json.n, 1)
end

function test_ttl_follows_the_clock(t)
  t.eq(t.post("/remember", "kept").status, 204)
  t.eq(t.get("/remembered").json.value, "kept")
  t.advance(61)
  t.eq(t.get("/remembered").json, {})
end

function test_handler_error_is_a_500(t)
  t.eq(t.get("/error").status, 500)
end

function test_endless_handler_is_stopped(t)
  t.eq(t.get("/loop").status, 503)
  t.eq(t.get("/hello").status, 200)
end

testing.case("a case with spaces", function(t)
  t.eq(t.get("/hits").json.hits, 1)
end)
