"""Server-sent events (res:sse): the event stream format, channels shared with WebSockets
(one moonwire.broadcast reaches both), keep-alive comments, a client that never reads, over
HTTP/1.1 and HTTP/2 with httpx; and a real browser's EventSource (Chromium headless through
Selenium) on the default app's www/sse.html."""
import asyncio
import socket
import threading
import time

import httpx
import pytest
import websockets

from harness import REPO, chromium_driver, run_cli, wait_until
from http2_client import SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE, RawH2, Target, frame
from websocket_client import url

APP = r"""
moonwire.options{ sse = { keepalive = 0.3, queue_limit = 256 * 1024 } }

moonwire.get("^/fields$", function(req, res)
  local sse = res:sse()
  sse:send{ event = "greeting", id = "7", retry = 1500, data = "line one\nline two\r\nline three" }
  sse:send("plain text")
  sse:send{ id = "" }
  sse:close()
end)

moonwire.get("^/refused$", function(req, res)
  local sse = res:sse()
  for _, event in ipairs{ { event = "a\nb", data = "x" }, { id = "1\r", data = "x" }, { data = "x", colour = "red" },
                          { retry = -1 }, {} } do
    local ok, err = pcall(sse.send, sse, event)
    sse:send{ event = "refused", data = (ok and "accepted " or "refused ") .. tostring(err) }
  end
end)

moonwire.get("^/resume$", function(req, res)
  local last = tonumber(req:header("last-event-id")) or 0
  local sse = res:sse()
  for n = last + 1, last + 2 do sse:send{ id = tostring(n), data = "n" .. n } end
end)

moonwire.get("^/channel/(\\w+)$", function(req, res)
  local sse = res:sse()
  sse:subscribe(req.params[1])
  sse:send{ event = "subscribed", data = req.params[1] }
end)

moonwire.get("^/quiet$", function(req, res)
  local sse = res:sse()
  sse:subscribe("nobody-publishes-here")
end)

moonwire.get("^/ticks$", function(req, res)
  local sse = res:sse()
  local n = 0
  while true do
    n = n + 1
    local ok, err = sse:send(tostring(n))
    if not ok then
      moonwire.log.info("ticks: client gone after " .. n .. " (" .. tostring(err) .. ")")
      return
    end
    moonwire.sleep(0.05)
  end
end)

moonwire.post("^/publish$", function(req, res)
  local reached = moonwire.broadcast(req.body, { channel = req.query.channel })
  res:send(tostring(reached))
end)

moonwire.get("^/flood$", function(req, res)
  local chunk = string.rep("x", 8000)
  local reached = 0
  for i = 1, tonumber(req.query.n) do
    reached = moonwire.broadcast(i .. chunk, { channel = "flood" })
  end
  res:send(tostring(reached))
end)

moonwire.get("^/alive$", function(req, res) res:send("ok") end)

function OnConnect(ws) ws:subscribe("news") end
function OnMessage(ws, text) moonwire.broadcast("ws says " .. text, { channel = "news" }) end
"""


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(APP)


def events_of(lines):
    """Parses event stream lines (str) into a list of dicts, as a browser would dispatch them."""
    events, current = [], {}
    for line in lines:
        if line == "":
            if current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            current.setdefault("comments", []).append(line)
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data" and "data" in current:
            current["data"] += "\n" + value
        else:
            current[name] = value
    return events


def read_events(response, count, timeout=5.0):
    """Reads `count` events (comments excluded) from a streaming httpx response."""
    lines, deadline = [], time.monotonic() + timeout
    for line in response.iter_lines():
        lines.append(line)
        events = [e for e in events_of(lines) if set(e) != {"comments"}]
        if len(events) >= count:
            return events
        assert time.monotonic() < deadline, f"only {events} after {timeout} s"
    return [e for e in events_of(lines) if set(e) != {"comments"}]


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_fields_are_written_as_the_format_says(server, http2):
    with httpx.Client(http1=not http2, http2=http2, timeout=10) as client:
        with client.stream("GET", server.url + "/fields", headers={"accept-encoding": "gzip"}) as response:
            assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache"
            assert "content-encoding" not in response.headers
            assert "content-length" not in response.headers
            raw = response.read().decode()
    assert raw == ("event: greeting\nid: 7\nretry: 1500\ndata: line one\ndata: line two\ndata: line three\n\n"
                   "data: plain text\n\nid: \n\n")


def test_line_breaks_in_event_and_id_and_unknown_fields_are_refused(server):
    with server.client() as client, client.stream("GET", "/refused") as response:
        events = read_events(response, 5)
    reasons = [e["data"] for e in events]
    assert "event may not contain CR, LF or NUL" in reasons[0]
    assert "id may not contain CR, LF or NUL" in reasons[1]
    assert "unknown field colour" in reasons[2]
    assert "retry must be a whole number" in reasons[3]
    assert "none of event, data, id, retry" in reasons[4]
    assert all(reason.startswith("refused sse:send: ") for reason in reasons), reasons


def test_last_event_id_lets_the_handler_resume(server):
    with server.client() as client:
        first = events_of(client.get("/resume").text.split("\n"))
        assert [(e["id"], e["data"]) for e in first] == [("1", "n1"), ("2", "n2")]
        again = events_of(client.get("/resume", headers={"last-event-id": first[-1]["id"]}).text.split("\n"))
        assert [(e["id"], e["data"]) for e in again] == [("3", "n3"), ("4", "n4")]


def test_idle_streams_get_keepalive_comments(server):
    with server.client() as client, client.stream("GET", "/quiet") as response:
        started, comments = time.monotonic(), 0
        for line in response.iter_lines():
            if line.startswith(":"):
                comments += 1
            if comments == 3:
                break
        elapsed = time.monotonic() - started
    # keepalive = 0.3 s: three comments take about 0.9 s, not less.
    assert 0.6 <= elapsed < 5, elapsed


def test_keepalive_option_is_checked_at_load(tmp_path):
    (tmp_path / "main.lua").write_text("moonwire.options{ sse = { keepalive = 5, queue_lmit = 1 } }\n")
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode == 1
    assert "main.lua:1: moonwire.options: unknown option sse.queue_lmit" in result.stdout, result.stdout


def test_a_handler_learns_that_its_client_left(server):
    mark = server.log_mark()
    with server.client() as client, client.stream("GET", "/ticks") as response:
        read_events(response, 3)
    assert server.wait_for_log("ticks: client gone after", timeout=5, since=mark), server.log_since(mark)
    assert "(closed)" in server.log_since(mark)


def test_a_head_request_gets_the_head_and_the_connection_goes_on(server):
    with server.client(timeout=5) as client:
        head = client.head("/channel/headonly")
        assert head.status_code == 200
        assert head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""
        assert client.get("/alive").text == "ok", "the keep-alive connection serves the next request"


def test_one_broadcast_reaches_websockets_and_event_streams_on_both_protocols(server):
    async def scenario():
        async with websockets.connect(url(server)) as ws:
            wait_until(lambda: True)
            async with httpx.AsyncClient(http1=True, http2=False, timeout=10) as h1, \
                    httpx.AsyncClient(http1=False, http2=True, timeout=10) as h2:
                async with h1.stream("GET", server.url + "/channel/news") as s1, \
                        h2.stream("GET", server.url + "/channel/news") as s2:
                    lines1, lines2 = s1.aiter_lines(), s2.aiter_lines()

                    async def next_event(lines):
                        collected = []
                        async for line in lines:
                            collected.append(line)
                            found = [e for e in events_of(collected) if "data" in e]
                            if found:
                                return found[0]

                    assert (await next_event(lines1))["event"] == "subscribed"
                    assert (await next_event(lines2))["event"] == "subscribed"
                    reached = (await h1.post(server.url + "/publish?channel=news", content="from http")).text
                    assert reached == "3"
                    assert await ws.recv() == "from http"
                    assert (await next_event(lines1)) == {"data": "from http"}
                    assert (await next_event(lines2)) == {"data": "from http"}
                    await ws.send("a\nb")
                    assert await ws.recv() == "ws says a\nb"
                    assert (await next_event(lines1)) == {"data": "ws says a\nb"}
                    assert (await next_event(lines2)) == {"data": "ws says a\nb"}
    asyncio.run(asyncio.wait_for(scenario(), 20))
    # The streams left with their clients: nobody is in the channel any more.
    assert wait_until(lambda: server.request("POST", "/publish?channel=news", content="x").text == "0")


def kernel_send_buffer_limit():
    """The most a TCP socket's send buffer grows to (tcp_wmem's third value): what the kernel
    can take for a client that reads nothing before the server's own queue fills."""
    try:
        return int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


def test_a_client_that_never_reads_is_dropped_and_the_others_are_unharmed(server):
    mark = server.log_mark()
    # Bursts of 10 events of 8 kB, enough to pass what the kernel buffers for the stuck client
    # (its send buffer grows to tcp_wmem's limit: about 3 MB taken of 4 MiB on Linux 6.18) and
    # then the 256 KiB queue limit twice over.
    bursts = -(-(kernel_send_buffer_limit() + 2 * 256 * 1024) // 80_000)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", server.port))
    stuck.sendall(b"GET /channel/flood HTTP/1.1\r\nHost: x\r\n\r\n")
    received, done = [], threading.Event()

    def reader():
        with server.client(timeout=30) as client, client.stream("GET", "/channel/flood") as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line[6:7].isdigit():
                    received.append(int(line[6:].rstrip("x")))
                    if len(received) == 10 * bursts:
                        break
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert wait_until(lambda: server.request("POST", "/publish?channel=flood", content="").text == "2")
        before = server.rss_mib()
        # The reading client takes each burst of 80 kB before the next: it is never far behind.
        for burst in range(1, bursts + 1):
            server.get("/flood?n=10")
            assert wait_until(lambda: len(received) >= 10 * burst or done.is_set(), timeout=10), len(received)
        assert server.wait_for_log("sse client does not read", timeout=10, since=mark), server.log_since(mark)
        assert done.wait(20), f"the reading client got {len(received)} events"
        assert received == list(range(1, 11)) * bursts
        assert server.rss_mib() - before < 40
    finally:
        thread.join(20)
        stuck.close()
    server.assert_alive()


def test_over_http2_only_the_stream_that_does_not_read_is_reset(server):
    mark = server.log_mark()
    # Stream windows of 1 KiB that the client never opens; the connection's window it does.
    with RawH2(Target(False, server.port, None), settings={SETTINGS_INITIAL_WINDOW_SIZE: 1024}) as h2:
        h2.send(frame(WINDOW_UPDATE, 0, 0, (1 << 30).to_bytes(4, "big")))
        h2.send(h2.get(1, "/channel/flood"))
        assert h2.wait(lambda: 1 in h2.answered())
        for _ in range(2):
            server.get("/flood?n=100")
        assert h2.wait(lambda: 1 in h2.resets(), timeout=10), server.log_since(mark)
        assert "sse client does not read" in server.log_since(mark)
        h2.send(h2.get(3, "/alive"))
        assert h2.wait(lambda: 3 in h2.answered()), "the connection's other streams should go on"
        assert not h2.closed


# --- a real browser ------------------------------------------------------------------------


def test_a_browser_event_source_gets_http_and_websocket_publishes_and_resumes(moonwire):
    server = moonwire(app=REPO / "scripts", www=REPO / "www")
    driver = chromium_driver()
    try:
        driver.set_script_timeout(10)
        driver.get(server.url + "/sse.html")
        seen = lambda: driver.execute_script("return window.received")  # noqa: E731
        assert wait_until(lambda: seen()["listening"], timeout=10), seen()
        server.request("POST", "/sse/publish", content="hello from http")

        async def chat():
            async with websockets.connect(url(server, "/chat")) as ws:
                await ws.recv()
                await ws.send("hello from a websocket")
                while True:
                    if "hello from a websocket" in await ws.recv():
                        return
        asyncio.run(asyncio.wait_for(chat(), 10))
        texts = lambda: [m["text"] for m in seen()["chat"] if not m.get("system")]  # noqa: E731
        assert wait_until(lambda: len(texts()) >= 2, timeout=10), seen()
        assert texts() == ["hello from http", "hello from a websocket"]
        assert {m["from"] for m in seen()["chat"] if not m.get("system")} == {"http", next(
            m["from"] for m in seen()["chat"] if m["text"] == "hello from a websocket")}

        # /sse/count closes after 3, 6 and 9; the browser reconnects with Last-Event-ID.
        assert wait_until(lambda: seen()["done"], timeout=15), seen()
        assert seen()["count"] == [f"{n}:{n}" for n in range(1, 10)]
        assert seen()["resumed"] == ["0", "3", "6"]
        assert driver.find_element("id", "count").text == "123456789"
    finally:
        driver.quit()
