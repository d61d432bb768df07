"""Routes and virtual hosts matched by regular expressions (moonwire.get, moonwire.route,
moonwire.vhost), over real sockets. The cases that need only requests and answers (captures,
methods and 405, HEAD, the first route winning, handlers then static files then 404, virtual
host captures) are Lua tests of the same app: Tests/lua/routing, run by test_lua_cases.py."""
import time

import pytest

from harness import REPO, parse_one, run_cli

# The app of the Lua cases in Tests/lua/routing, with the tenant host given a static root.
TENANT = r"moonwire.vhost([[(?<tenant>[a-z]+)\.example\.com]])"
APP = (REPO / "Tests" / "lua" / "routing" / "scripts" / "main.lua").read_text()
assert TENANT in APP
APP = APP.replace(TENANT, TENANT[:-1] + ", {www = WWW_ROOT})")


def app(www):
    return APP.replace("WWW_ROOT", repr(str(www)))


def test_virtual_host_static_root(moonwire, tmp_path):
    (tmp_path / "index.html").write_text("tenant site")
    server = moonwire(app(tmp_path))
    assert server.get("/", headers={"Host": "acme.example.com"}).text == "tenant site"
    assert "home page" in server.get("/").text


def test_ipv6_literal_and_missing_host(moonwire, tmp_path):
    server = moonwire(app(tmp_path))
    assert server.get("/v6", headers={"Host": "[::1]:8080"}).text == "ipv6 literal host"
    reply = server.raw(b"GET /users/9 HTTP/1.0\r\n\r\n").data
    assert reply.startswith(b"HTTP/1.0 200") and b'"id":"9"' in reply


def test_regex_dos_answers_in_bounded_time(moonwire, tmp_path):
    server = moonwire(app(tmp_path))
    started = time.monotonic()
    reply = server.get("/slow/" + "a" * 5000 + "c")
    assert reply.status_code == 404
    assert time.monotonic() - started < 5
    assert server.get("/slow/aaab").text == "matched"


def test_invalid_patterns_name_file_and_line(tmp_path):
    (tmp_path / "main.lua").write_text('moonwire.get("/ok", function() end)\nmoonwire.get("/bad(", function() end)\n')
    check = run_cli("check", "--scripts", tmp_path)
    assert check.returncode == 1
    assert "main.lua:2:" in check.stdout and "missing closing parenthesis" in check.stdout and "/bad(" in check.stdout
    serve = run_cli("serve", "--port", "0", "--scripts", tmp_path)
    assert serve.returncode == 1 and "main.lua:2:" in serve.stdout + serve.stderr


@pytest.mark.parametrize("value", ["99", "-1", "0.5", '"zero"'])
def test_a_forged_host_is_refused_not_a_crash(tmp_path, value):
    # A host object's hidden key can be found with pairs() and put in any table; a host
    # number out of range used to stop the process (Swift's index check) during the load.
    (tmp_path / "main.lua").write_text(f"""local h = moonwire.vhost("^a$")
local key
for k in pairs(h) do if type(k) == "userdata" then key = k end end
moonwire.get({{[key] = {value}}}, "/x", function(req, res) res:send("x") end)
""")
    check = run_cli("check", "--scripts", tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "main.lua:4: moonwire.get: the first argument is not a host from moonwire.vhost" in check.stdout


def test_invalid_pattern_in_a_reload_keeps_the_old_routes(moonwire, tmp_path):
    server = moonwire('moonwire.get("/a", function(req, res) res:send("a") end)')
    (server.scripts / "main.lua").write_text('moonwire.get("/a(", function(req, res) res:send("b") end)')
    assert server.wait_for_log("reload failed")
    assert "missing closing parenthesis" in server.log()
    assert server.get("/a").text == "a"


def test_host_name_and_virtual_hosts_agree(moonwire):
    # Host values that are not host[:port] never get here: they are 400
    # (test_http1_bad_input.py).
    server = moonwire("""
        moonwire.vhost([[example\\.com]]):get("/", function(req, res) res:send("vhost " .. req.host) end)
        function OnCommandGet(req, res) res:send("default " .. req.host) end
    """)
    for host, text in [("example.com:8080", "vhost example.com"), ("example.com", "vhost example.com"),
                       ("[::1]:8080", "default [::1]"), ("other.example", "default other.example")]:
        assert server.get("/", headers={"Host": host}).text == text, host
    # An absolute-form target names the host instead of the Host header (RFC 9112 section
    # 3.2.2): for req.host and for the virtual host alike.
    for target, host, text in [(b"http://example.com:81/", b"other.example", b"vhost example.com"),
                               (b"http://other.example/", b"example.com", b"default other.example")]:
        reply = server.raw(b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        assert parse_one(reply.data).body == text, target
