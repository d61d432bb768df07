"""Every event fires as docs/lua-api.md says, with the arguments it documents: OnStartup and
OnShutdown, OnTCPConnect (refusing), OnBeforeCommand (answering), dispatch to OnCommandGet,
OnCommandOther and OnHTTPRequest, OnException (500 pages, --dev and production) and OnError.
Apps record events in files under MOONWIRE_TEST_DIR (each event loop has its own Lua VM)."""
import json
import re
import time

import httpx
import pytest

from harness import APPS, parse_one, parse_responses

METHODS_GET = ["GET", "POST"]


METHODS_OTHER = ["PUT", "DELETE", "PATCH", "OPTIONS"]


def line_of(app, needle):
    """1-based line number of the first line of apps/<app>/main.lua containing needle."""
    for number, line in enumerate((APPS / app / "main.lua").read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {app}/main.lua")


# --- OnStartup / OnShutdown -----------------------------------------------------------------

def test_startup_once_and_shutdown_once(moonwire):
    server = moonwire(app="events", threads=2)
    assert server.wait_for_records("lifecycle.log", 1) == ["startup"]
    for _ in range(6):  # connections spread over both loops must not fire OnStartup again
        assert server.get("/x").status_code == 200
    time.sleep(0.2)
    assert server.records("lifecycle.log") == ["startup"]
    assert server.stop() == 0, server.log()
    assert server.records("lifecycle.log") == ["startup", "shutdown"]


# --- OnTCPConnect ---------------------------------------------------------------------------

def test_tcp_connect_gets_the_connection_fields(moonwire):
    server = moonwire(app="events")
    with server.connect() as s:
        client_port = s.getsockname()[1]
        s.sendall(b"GET /fields HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        for _ in range(100):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert parse_one(data).status == 200
    expected = f"127.0.0.1 {client_port} {server.port} integer"
    assert expected in server.records("connects.log"), server.records("connects.log")


def test_tcp_connect_returning_false_refuses(moonwire):
    server = moonwire(app="events")
    assert server.get("/before-refusing").status_code == 200
    (server.data_dir / "refuse").write_text("")
    before = len(server.records("before.log"))
    for _ in range(3):
        reply = server.raw(b"GET /refused HTTP/1.1\r\nHost: x\r\n\r\n", idle=3)
        assert reply.data == b"", reply.data[:200]   # no HTTP response at all
        assert reply.closed and reply.elapsed < 1.0  # closed or reset at once, not left hanging
    # no request was read from a refused connection
    assert len(server.records("before.log")) == before
    (server.data_dir / "refuse").unlink()
    assert server.get("/after-refusing").text == "get GET /after-refusing"


# --- OnBeforeCommand ------------------------------------------------------------------------

def test_before_command_returning_true_answers(moonwire):
    server = moonwire(app="events")
    reply = server.get("/before/answer")
    assert reply.status_code == 403
    assert reply.text == "denied by OnBeforeCommand"   # OnCommandGet did not run
    assert reply.headers["x-answered-by"] == "before"
    reply = server.request("PUT", "/before/answer")
    assert reply.status_code == 403 and reply.text == "denied by OnBeforeCommand"


def test_before_command_true_without_sending_is_empty_200(moonwire):
    server = moonwire(app="events")
    reply = server.get("/before/empty")
    assert reply.status_code == 200
    assert reply.content == b"" and reply.headers["content-length"] == "0"
    reply = server.get("/before/status")
    assert reply.status_code == 202 and reply.content == b""


def test_before_command_runs_first_for_every_request(moonwire):
    server = moonwire(app="events")
    reply = server.get("/plain")
    assert reply.text == "get GET /plain" and reply.headers["x-before"] == "seen"
    reply = server.request("DELETE", "/thing")
    assert reply.text == "other DELETE /thing" and reply.headers["x-before"] == "seen"
    assert server.wait_for_records("before.log", 2)
    assert server.records("before.log")[-2:] == ["GET /plain", "DELETE /thing"]


# --- dispatch -------------------------------------------------------------------------------

@pytest.mark.parametrize("app, expected", [
    # (the handler expected for GET/HEAD/POST, for other methods)
    ("dispatch_split", ("get", "other")),
    ("dispatch_fallback", ("fallback", "fallback")),
    ("dispatch_get_fallback", ("get", "fallback")),
    ("dispatch_other_fallback", ("fallback", "other")),
])
def test_dispatch_by_method(moonwire, app, expected):
    server = moonwire(app=app)
    for_get, for_other = expected
    for method in METHODS_GET:
        reply = server.request(method, "/d", content=b"x" if method == "POST" else None)
        assert reply.status_code == 200, (method, reply.status_code)
        assert reply.headers["x-via"] == for_get and reply.text == f"{for_get} {method}", method
    head = server.request("HEAD", "/d")
    assert head.status_code == 200 and head.headers["x-via"] == for_get and head.content == b""
    assert head.headers["content-length"] == str(len(f"{for_get} HEAD"))
    for method in METHODS_OTHER:
        reply = server.request(method, "/d")
        assert reply.status_code == 200, (method, reply.status_code)
        assert reply.headers["x-via"] == for_other and reply.text == f"{for_other} {method}", method


def test_no_handlers_static_for_get_404_for_others(moonwire):
    server = moonwire(app="dispatch_none")
    reply = server.get("/")
    assert reply.status_code == 200 and "home page" in reply.text
    assert reply.headers["x-before"] == "none-app"
    assert server.get("/missing.txt").status_code == 404
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"]:
        assert server.request(method, "/index.html").status_code == 404, method
    # POST goes to OnCommandGet's slot, but static files are only for GET/HEAD
    assert server.request("POST", "/index.html", content=b"x").status_code == 404


def test_no_handler_at_all_serves_static_files(moonwire, tmp_path):
    www = tmp_path / "site"
    www.mkdir()
    (www / "index.html").write_text("<p>home</p>")
    server = moonwire("local x = 1", www=www)
    assert server.get("/").text == "<p>home</p>"
    assert server.request("PUT", "/").status_code == 404


def test_unanswered_handlers_fall_through(moonwire):
    server = moonwire(app="dispatch_unanswered")
    reply = server.get("/site.css")
    assert reply.status_code == 200 and "color" in reply.text
    assert reply.headers["x-handler"] == "get-ran"      # kept on the static response
    assert server.request("POST", "/site.css", content=b"x").status_code == 404
    assert server.request("PUT", "/site.css").status_code == 404


def test_unanswered_other_method_is_404(moonwire):
    server = moonwire("function OnCommandOther(req, res) end")
    assert server.request("PUT", "/nothing").status_code == 404


def test_what_handlers_return_does_not_count_as_an_answer(moonwire, tmp_path):
    # Only OnBeforeCommand's `true` ends a request. A handler or route that returns true
    # without sending leaves the request to static files (or 404), with or without
    # OnBeforeCommand in front (handlers are then called by different paths).
    www = tmp_path / "site"
    www.mkdir()
    (www / "page.txt").write_text("static page")
    handlers = """
        function OnCommandGet(req, res) return true end
        moonwire.get("/routed", function(req, res) return true end)
    """
    for before in ("", "function OnBeforeCommand(req, res) end"):
        server = moonwire(before + handlers, www=www)
        assert server.get("/page.txt").text == "static page", before
        assert server.get("/missing").status_code == 404, before
        assert server.get("/routed").status_code == 404, before


def test_handler_setting_only_status_gets_empty_body(moonwire):
    server = moonwire(app="dispatch_unanswered")
    for path, status in [("/status-only", 404), ("/status-410", 410), ("/site.css", 200)]:
        reply = server.raw(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        response = parse_one(reply.data)
        assert response.status == status, path
        if path != "/site.css":   # assigning res.status answered: no static file, empty body
            assert response.body == b"" and response.header("content-length") == "0", path


def test_event_functions_are_looked_up_once_per_load(moonwire):
    server = moonwire(app="lookup_once", threads=1)
    assert server.get("/x").text == "original get"
    assert server.get("/define").text == "defined"
    # globals assigned after the load are not events
    assert server.get("/y").text == "original get"
    assert server.request("PUT", "/z").status_code == 404


# --- OnException and the 500 pages ----------------------------------------------------------

def exceptions(server, count):
    return [json.loads(line) for line in server.wait_for_records("exceptions.log", count)]


def error_level_lines(text, needle):
    return [line for line in text.splitlines()
            if needle in line and re.match(r"^\S+\s+(error|critical)\s", line)]


def test_exception_production_page_event_and_log(moonwire):
    server = moonwire(app="errors")
    mark = server.log_mark()
    reply = server.get("/boom")
    assert reply.status_code == 500
    assert reply.content == b"500 Internal Server Error\n"
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["content-length"] == str(len(reply.content))
    assert reply.headers["server"] == "moonwire" and reply.headers["date"]
    line = line_of("errors", 'error("kaboom-42")')
    event = exceptions(server, 1)[0]
    assert f"main.lua:{line}: kaboom-42" in event["message"]
    assert "stack traceback" in event["traceback"]
    assert event["message_type"] == "string" and event["traceback_type"] == "string"
    assert event["method"] == "GET" and event["path"] == "/boom"
    assert server.wait_for_log("kaboom-42", since=mark)
    assert error_level_lines(server.log_since(mark), "kaboom-42"), server.log_since(mark)
    # the server keeps serving
    assert server.get("/after").text == "fine /after"


def test_exception_dev_page_shows_message_traceback_and_source(moonwire):
    server = moonwire(app="errors", dev=True)
    reply = server.get("/boom")
    assert reply.status_code == 500
    assert reply.headers["content-type"].startswith("text/plain")
    line = line_of("errors", 'error("kaboom-42")')
    assert f"main.lua:{line}: kaboom-42" in reply.text
    assert "stack traceback" in reply.text
    # source lines around the failing line
    assert 'error("kaboom-42")' in reply.text
    assert 'local marker = "the line before the failing one"' in reply.text
    assert exceptions(server, 1)[0]["path"] == "/boom"
    assert server.get("/after").text == "fine /after"


def test_dev_mode_error_page_shows_source(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res)
          local x = 1
          error("dev failure")
        end
    """, dev=True)
    reply = server.get("/")
    assert reply.status_code == 500
    assert "main.lua:4: dev failure" in reply.text
    assert "stack traceback" in reply.text
    assert '>> 4 |           error("dev failure")' in reply.text


@pytest.mark.parametrize("path, needle", [
    ("/boom-after-send", "after-send-kaboom-5"),
    ("/boom-after-sleep", "late-kaboom-9"),
    ("/nil-index", "attempt to index a nil value"),
    ("/before-boom", "before-kaboom-17"),
])
def test_exception_variants_answer_500_and_fire_the_event(moonwire, path, needle):
    server = moonwire(app="errors")
    reply = server.get(path)
    assert reply.status_code == 500
    assert reply.content == b"500 Internal Server Error\n"   # nothing the handler sent leaks
    event = exceptions(server, 1)[0]
    assert needle in event["message"] and event["path"] == path
    assert server.get("/next").text == "fine /next"


def test_error_value_that_is_not_a_string(moonwire):
    server = moonwire(app="errors")
    assert server.get("/error-object").status_code == 500
    assert server.wait_for_records("exceptions.log", 1)
    assert server.get("/next").text == "fine /next"


def test_error_isolation_many_failures_then_success(moonwire):
    server = moonwire(app="errors", threads=2)
    with server.client() as client:
        for i in range(10):
            assert client.get("/boom").status_code == 500
            reply = client.get(f"/ok{i}")
            assert reply.status_code == 200 and reply.text == f"fine /ok{i}"
    assert len(exceptions(server, 10)) == 10
    assert server.process.poll() is None


def test_pipelined_request_after_a_failing_one_is_answered(moonwire):
    server = moonwire(app="errors")
    reply = server.raw(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", idle=5)
    responses = [r for r in parse_responses(reply.data) if r.status >= 200]
    assert [r.status for r in responses] == [500, 200], reply.data[:400]
    assert responses[1].body == b"fine /second"


def test_an_error_in_ontcpconnect_refuses_the_connection(moonwire):
    server = moonwire("""
        function OnTCPConnect(conn) error("connect hook broke") end
        function OnException(err, req) moonwire.log.warn("exception", err.event, err.message, tostring(req)) end
        function OnCommandGet(req, res) res:send("let in") end
    """)
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
    with pytest.raises(httpx.TransportError):
        server.get("/")
    assert server.wait_for_log("exception OnTCPConnect")
    assert "connect hook broke nil" in server.log()

def test_an_error_in_onbeforecommand_answers_500_and_reaches_onexception(moonwire):
    server = moonwire("""
        function OnBeforeCommand(req, res) req.who = "probe"; error("guard broke") end
        function OnException(err, req) moonwire.log.warn("exception", err.event, req.who, req.path) end
        function OnCommandGet(req, res) res:send("let in") end
    """)
    reply = server.get("/admin")
    assert reply.status_code == 500 and "let in" not in reply.text
    assert server.wait_for_log("exception OnBeforeCommand probe /admin")


# --- OnError --------------------------------------------------------------------------------

def test_error_event_fires_on_a_bad_request(moonwire):
    server = moonwire(app="events")
    reply = server.raw(b"THIS IS NOT HTTP\r\n\r\n")
    assert reply.data.startswith(b"HTTP/1.1 400 "), reply.data[:200]
    records = server.wait_for_records("errors.log", 1)
    assert len(records) == 1 and records[0].strip(), records
    assert "400" in records[0], records
    assert server.get("/after").text == "get GET /after"


# --- handler calls behind pipelined requests ------------------------------------------------

def test_pipelined_requests_each_keep_their_own_call(moonwire):
    # Handler calls are reused once answered: the first call's error report (after its 500
    # went out) and the state of a handler that finished early must still be their own while
    # the pipelined requests behind them are answered.
    server = moonwire("""
        seen = {}
        function OnException(err, req) seen[#seen + 1] = "exception " .. req.path end
        moonwire.get("/fail", function(req, res) error("failing " .. req.path) end)
        moonwire.get("/early", function(req, res)
          req.mark = req.path
          res:send("early")
          res:finish()
          seen[#seen + 1] = "after finish " .. req.mark .. " " .. tostring(res.status)
        end)
        moonwire.get("/plain", function(req, res) res:send("plain " .. req.path) end)
        moonwire.get("/seen", function(req, res) res:send(table.concat(seen, ", ")) end)
    """, threads=1)
    reply = server.raw(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").data
    assert reply.count(b"HTTP/1.1 ") == 4
    assert reply.index(b"500 ") < reply.index(b"plain /plain") < reply.index(b"early") < reply.rindex(b"plain /plain")
    assert server.get("/seen").text == "exception /fail, after finish /early 200"


def test_a_handler_that_answers_early_is_still_the_running_call(moonwire):
    # A request pipelined behind one that waits is handled inside that one's answer
    # (res:finish), while its handler is still running: afterwards that handler must still be
    # the running call, which moonwire.sleep and the CPU budget look for.
    server = moonwire("""
        seen = {}
        moonwire.get("/early", function(req, res)
          moonwire.sleep(0.2)
          res:send("early")
          res:finish()
          local ok, err = pcall(moonwire.sleep, 0.01)
          seen[#seen + 1] = "after finish " .. tostring(ok) .. " " .. tostring(err)
        end)
        moonwire.get("/plain", function(req, res) seen[#seen + 1] = "plain"; res:send("plain") end)
        moonwire.get("/seen", function(req, res) res:send(table.concat(seen, ", ")) end)
    """, threads=1)
    reply = server.raw(b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").data
    assert reply.count(b"HTTP/1.1 200") == 2
    assert server.get("/seen").text == "plain, after finish true nil"
