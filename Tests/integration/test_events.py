"""Each event of LUA-API.md fires, in order, with the arguments it documents."""


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


def test_no_handler_at_all_serves_static_files(moonwire, tmp_path):
    www = tmp_path / "site"
    www.mkdir()
    (www / "index.html").write_text("<p>home</p>")
    server = moonwire("local x = 1", www=www)
    assert server.get("/").text == "<p>home</p>"
    assert server.request("PUT", "/").status_code == 404


def test_unanswered_other_method_is_404(moonwire):
    server = moonwire("function OnCommandOther(req, res) end")
    assert server.request("PUT", "/nothing").status_code == 404


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


def test_errors_inside_events_are_logged_not_fatal(moonwire):
    server = moonwire("""
        function OnTCPConnect(conn) error("connect hook broke") end
        function OnCommandGet(req, res) res:send("still here") end
    """)
    assert server.get("/").text == "still here"
    assert "connect hook broke" in server.log()


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
