"""Errors the moonwire API raises reach the script with their message and the calling line,
whether they come from a table that was being walked or from a plain argument check; req and
res used wrongly or after their call fail with a message, never a crash."""
import pytest

from harness import run_cli


@pytest.mark.parametrize("call, message", [
    ('moonwire.options{origins = {"^https://a$", true}}', "origins must be strings"),
    ('moonwire.push_preload("/index.html", {"/a.css", 42})', "links must be paths"),
    ('moonwire.push_preload("index.html", {})', "expected a path starting with /"),
    ('moonwire.listen{port = "http"}', "port must be a number"),
    ('moonwire.listen{port = 8443, tls = {cert = "/nonexistent.pem", key = "/nonexistent.pem"}}', "/nonexistent.pem"),
    ('moonwire.vhost("^a$", {tls = {cert = "/nonexistent.pem", key = "/x"}})', "moonwire.vhost: tls"),
    ('moonwire.options{http2 = {max_frame_size = 100}}', "http2.max_frame_size"),
    ('moonwire.options{http2 = {push = "yes"}}', "http2.push must be true or false"),
])
def test_load_time_errors_name_the_line_and_say_why(tmp_path, call, message):
    (tmp_path / "main.lua").write_text(f"-- first line\n{call}\n")
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode == 1
    assert "main.lua:2:" in result.stdout and message in result.stdout, result.stdout


def test_handler_errors_from_table_arguments_keep_their_message(moonwire):
    server = moonwire('moonwire.get("/h", function(req, res) res:header("X-List", {"ok", "bad\\r\\nvalue"}) end)',
                      dev=True)
    reply = server.get("/h")
    assert reply.status_code == 500
    assert "res:header: invalid value for X-List" in reply.text
    assert "main.lua:1:" in reply.text


def test_response_misuse_raises_clear_errors(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          local ok, err = pcall(function()
            if req.path == "/badstatus" then res.status = 99
            elseif req.path == "/badheader" then res:header("Bad Name", "x")
            elseif req.path == "/splitting" then res:header("X", "a\\r\\nInjected: yes")
            elseif req.path == "/badjson" then res:json({f = print}) end
          end)
          res:send(tostring(err))
        end
    """)
    assert "100 to 999" in server.get("/badstatus").text
    assert "header name" in server.get("/badheader").text
    reply = server.get("/splitting")
    assert "invalid value" in reply.text and "injected" not in reply.headers
    assert "cannot encode" in server.get("/badjson").text


@pytest.mark.parametrize("call, message", [
    ('res.send("hello")', 'res:send: expected the res object, got a string (call res:send(...), not res.send(...))'),
    ('res.header(nil, "x")', 'res:header: expected the res object, got a nil'),
    ('req.header("host")', 'req:header: expected the req object, got a string'),
    ('res.send(req, "x")', 'res:send: expected the res object, got the req object'),
    ('getmetatable(req).__newindex("text", "k", "v")', "cannot set a field of a string: not a req or res object"),
    ('getmetatable(res).__newindex("text", "k", "v")', "cannot set a field of a string: not a req or res object"),
    ('getmetatable(res).__newindex({}, "status", 404)', "cannot set a field of a table: not a req or res object"),
    ('res:send(tostring(getmetatable(req).__index("text", "path")))', "cannot read a field of a string: not a req or res object"),
    ('res:send(tostring(getmetatable(res).__index(42, "status")))', "cannot read a field of a number: not a req or res object"),
    # req and res are light userdata, whose metatable every light userdata shares.
    ('local x = 1; local id = debug.upvalueid(function() return x end, 1); res:send(tostring(id.path))',
     "cannot read a field of a userdata: not a req or res object"),
    ('local x = 1; debug.upvalueid(function() return x end, 1).status = 404',
     "cannot set a field of a userdata: not a req or res object"),
    ('req[nil] = 1', "cannot set a field of req under a nil or NaN key"),
    ('res[0/0] = 1', "cannot set a field of res under a nil or NaN key"),
])
def test_objects_used_wrongly_fail_with_a_message(moonwire, call, message):
    # res.send(x) used to hand Lua a string where a table was expected: the server crashed.
    # A req passed for res is refused too, though it belongs to the same call. The
    # metamethods reached the objects' memory when they were full userdata: called on a string,
    # __newindex wrote into it and corrupted the heap (the server died later with "double free
    # or corruption").
    server = moonwire(f'moonwire.get("/h", function(req, res) {call} end)', dev=True)
    reply = server.get("/h")
    assert reply.status_code == 500
    assert message in reply.text and "main.lua:1:" in reply.text, reply.text
    for _ in range(3):
        assert server.get("/h").status_code == 500, "the server must still be serving"


def test_req_cannot_be_used_after_its_handler(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          if req.path == "/keep" then kept = req; res:send("kept") return end
          local ok, err = pcall(function() return kept:header("host") end)
          res:send(tostring(ok) .. " " .. tostring(err))
        end
    """, threads=1)
    server.get("/keep")
    reply = server.get("/use")
    assert reply.text.startswith("false") and "finished" in reply.text


def test_fields_a_script_sets_on_req_and_res_read_back(moonwire):
    server = moonwire('''
local kept
moonwire.get("/set", function(req, res)
  req.owner = "ann"
  local path = req.path
  req.path = "/rewritten"
  res.note = 7
  kept = req
  res:send(table.concat({req.owner, path, req.path, tostring(res.note),
                         tostring(req.headers == req.headers), tostring(req.params == req.params)}, " "))
end)
moonwire.get("/kept", function(req, res)
  local read, read_error = pcall(function() return kept.method end)
  local set, set_error = pcall(function() kept.owner = "bob" end)
  res:send(table.concat({tostring(kept.owner), tostring(read), read_error, tostring(set), set_error}, " | "))
end)
moonwire.get("/fresh", function(req, res) res:send(tostring(req.owner) .. " " .. tostring(res.note)) end)
''', threads=1)
    assert server.get("/set").text == "ann /set /rewritten 7 true true"
    # The fields a script set go with the call; a kept object can neither read nor set more.
    user, read, read_error, set_, set_error = server.get("/kept").text.split(" | ")
    assert (user, read, set_) == ("nil", "false", "false")
    assert "req.method: the request has finished" in read_error
    assert "req.owner: the request has finished" in set_error
    assert server.get("/fresh").text == "nil nil"


def test_fields_set_on_objects_are_dropped_with_their_call(moonwire):
    # The fields live in a table of the VM until the call ends; a leak there would keep every
    # request's fields.
    server = moonwire('''
moonwire.get("/set", function(req, res)
  req.blob = string.rep("q", 20000)
  res.blob = string.rep("s", 20000)
  res:send(tostring(#req.blob + #res.blob))
end)
moonwire.get("/memory", function(req, res)
  collectgarbage("collect")
  res:send(tostring(moonwire.stats().memory_used))
end)
''', threads=1)
    assert server.get("/set").text == "40000"
    before = int(server.get("/memory").text)
    for _ in range(100):
        assert server.get("/set").status_code == 200
    after = int(server.get("/memory").text)
    assert after - before < 1_000_000, (before, after)


def test_an_error_whose_tostring_fails_is_a_500_not_a_crash(moonwire):
    # The error value is described after the coroutine died; its __tostring used to run there,
    # outside any protected call, and its own error aborted the process.
    server = moonwire('''
moonwire.get("/boom", function(req, res)
  error(setmetatable({}, {__tostring = function() error("inner") end}))
end)
moonwire.get("/ok", function(req, res) res:send("ok") end)
''')
    assert server.get("/boom").status_code == 500
    assert server.get("/ok").text == "ok"
    assert "(a table whose __tostring failed)" in server.log()


def test_option_tables_are_read_without_running_their_metamethods(moonwire):
    # A Swift function reading an option field ran the table's __index, whose error then
    # unwound through Swift frames. Option tables are read raw.
    server = moonwire('''
local trap = setmetatable({}, {__index = function() error("trap") end})
moonwire.get("/b", function(req, res)
  moonwire.broadcast("x", trap)
  res:send("sent")
end)
''')
    assert server.get("/b").text == "sent"
    assert server.get("/b").text == "sent"


def test_a_gsub_table_whose_index_fails_raises_in_the_script(moonwire):
    server = moonwire('''
moonwire.get("/g", function(req, res)
  local ok, err = pcall(moonwire.re.gsub, "a b", [[\\w]], setmetatable({}, {__index = function() error("lookup failed") end}))
  res:send(tostring(ok) .. " " .. tostring(err))
end)
moonwire.get("/t", function(req, res)
  res:send((moonwire.re.gsub("a b", [[\\w]], setmetatable({}, {__index = function(_, k) return k:upper() end}))))
end)
''')
    reply = server.get("/g").text
    assert reply.startswith("false ") and "lookup failed" in reply, reply
    assert server.get("/t").text == "A B"
