"""moonwire.http against real upstreams started here (upstreams.py): plain HTTP/1.1, TLS with
the test CA, and HTTP/2 over TLS. apps/http_client makes each call a test asks for (POST /call
with {fn, args}) and answers what it returned; network failures come back as `nil, err`,
argument mistakes are raised."""
import asyncio
import json
import ssl
import threading
import time

import httpx
import pytest
import websockets

from harness import free_port
from upstreams import HTTP1Upstream, HTTP2Upstream, RawUpstream


@pytest.fixture(scope="module")
def server(moonwire_module):
    # One loop: one VM and one connection pool, so connection reuse is visible.
    return moonwire_module(app="http_client", threads=1)


@pytest.fixture(scope="module")
def upstream():
    up = HTTP1Upstream()
    yield up
    up.close()


def server_context(certs):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.localhost.cert), str(certs.localhost.key))
    return context


@pytest.fixture(scope="module")
def tls_upstream(certs):
    up = HTTP1Upstream(tls=server_context(certs))
    yield up
    up.close()


def call(server, fn, *args, timeout=15):
    response = server.request("POST", "/call", content=json.dumps({"fn": fn, "args": list(args)}), timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()


def raised(server, fn, *args):
    response = server.request("POST", "/raise", content=json.dumps({"fn": fn, "args": list(args)}))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["raised"], data
    return data["message"]


# --- requests and answers -------------------------------------------------------------------

def test_get_returns_status_headers_and_body(server, upstream):
    data = call(server, "get", upstream.url + "/echo/get?q=1", {"headers": {"X-Token": "abc", "X-List": ["a", "b"]}})
    assert data["status"] == 200
    echo = json.loads(data["body"])
    assert echo["method"] == "GET" and echo["path"] == "/echo/get?q=1"
    assert echo["headers"]["x-token"] == "abc"
    assert echo["headers"]["x-list"] == "a, b"                 # a list sends the header once per value
    headers = data["headers"]
    assert all(name == name.lower() for name in headers), headers
    assert headers["content-type"] == "application/json"
    assert headers["x-multi"] == "one, two"                    # repeats joined with ", "
    assert headers["set-cookie"] == ["a=1; Path=/", "b=2, with comma"]   # set-cookie: always a list


def test_answer_headers_reach_every_view_of_the_answer(server, upstream):
    # The headers table is built when first looked at: pairs, JSON and moonwire.shared see it too.
    response = server.request("GET", "/answer-views", params={"url": upstream.url + "/echo/views"})
    assert response.status_code == 200, response.text
    views = response.json()
    for view in ("json", "shared", "direct"):
        assert views[view]["x-multi"] == "one, two", (view, views[view])
        assert views[view]["set-cookie"] == ["a=1; Path=/", "b=2, with comma"], (view, views[view])
    assert views["pairs"] == ["body=string", "headers=table", "status=number"]
    assert views["own"] == "mine"                   # a script's own `headers` is kept
    assert views["same"] and views["plain"] and views["missing"]


def test_post_sends_the_body(server, upstream):
    payload = "line one\nline two \u00e9"
    data = call(server, "post", upstream.url + "/echo/post", payload, {"headers": {"Content-Type": "text/plain"}})
    echo = json.loads(data["body"])
    assert echo["method"] == "POST" and echo["body"] == payload.encode().decode("latin-1")
    assert echo["headers"]["content-type"] == "text/plain"
    assert echo["headers"]["content-length"] == str(len(payload.encode()))


def test_request_with_every_field(server, upstream):
    data = call(server, "request", {"method": "PUT", "url": upstream.url + "/echo/put", "body": "b",
                                    "headers": {"x-a": "1"}, "timeout": 5, "max_body_size": 100000})
    echo = json.loads(data["body"])
    assert (echo["method"], echo["body"], echo["headers"]["x-a"]) == ("PUT", "b", "1")


def test_error_statuses_are_answers_not_errors(server, upstream):
    data = call(server, "get", upstream.url + "/status/503")
    assert data["status"] == 503 and data["body"] == "status 503" and "err" not in data


def test_head_has_an_empty_body(server, upstream):
    data = call(server, "request", {"method": "HEAD", "url": upstream.url + "/big/5000000"})
    assert data["status"] == 200 and data["body"] == ""
    assert data["headers"]["content-length"] == "5000000"


def test_keep_alive_reuses_one_connection(server, upstream):
    before = upstream.connections
    first = server.get("/sequence", params={"url": upstream.url + "/echo/seq", "n": 5}).json()
    second = server.get("/sequence", params={"url": upstream.url + "/echo/seq", "n": 5}).json()
    seen = first["connections"] + second["connections"]
    assert len(set(seen)) == 1, seen
    assert upstream.connections - before <= 1


def closes_at_the_second_request(connections):
    """A RawUpstream answer: the first request of a connection gets a keep-alive answer, the
    second finds the connection closed, as when an upstream's keep-alive timeout strikes just as
    a request arrives on an idle connection."""
    def answer(sock, head, data):
        connections.append(head)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
        received = data
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                return
            received += chunk
    return answer


def test_a_reused_connection_closed_by_the_upstream_is_retried_once_for_get(server):
    connections = []
    upstream = RawUpstream({"/flaky": closes_at_the_second_request(connections)})
    try:
        assert call(server, "get", upstream.url + "/flaky")["body"] == "first"
        # The idle connection is reused, the upstream closes it at the request: GET goes again
        # on a new connection, which answers.
        assert call(server, "get", upstream.url + "/flaky")["body"] == "first"
        assert len(connections) == 2
        # A POST is not sent twice: the same close is its error.
        answer = call(server, "post", upstream.url + "/flaky", "body")
        assert "closed" in answer.get("err", ""), answer
        assert len(connections) == 2
    finally:
        upstream.close()


# --- errors are values ----------------------------------------------------------------------

def test_connect_refused(server):
    port = free_port()
    data = call(server, "get", f"http://127.0.0.1:{port}/")
    assert data == {"err": f"connect to 127.0.0.1:{port} refused"}


def test_timeout_of_an_upstream_that_never_answers(server, upstream):
    started = time.monotonic()
    data = call(server, "get", upstream.url + "/never", {"timeout": 0.5})
    elapsed = time.monotonic() - started
    assert data == {"err": "timeout after 0.5 s"}
    assert 0.4 <= elapsed < 2.5, elapsed


def test_dns_failure_names_the_host(server):
    data = call(server, "get", "http://no-such-host.invalid/", {"timeout": 10})
    assert data["err"] == "cannot resolve no-such-host.invalid: no such host", data


def test_oversized_body_is_refused(server, upstream):
    announced = call(server, "get", upstream.url + "/big/2000", {"max_body_size": 1000})
    assert announced == {"err": "response body larger than 1000 bytes"}
    exact = call(server, "get", upstream.url + "/big/1000", {"max_body_size": 1000})
    assert exact["status"] == 200 and len(exact["body"]) == 1000


def test_oversized_stream_stops_early_with_bounded_memory(server, upstream):
    rss_before = server.rss_mib()
    data = call(server, "get", upstream.url + "/stream/1000000000", {"max_body_size": 1 << 20}, timeout=30)
    assert data == {"err": f"response body larger than {1 << 20} bytes"}
    assert server.rss_mib() - rss_before < 64
    # The upstream stopped long before its gigabyte: the connection was closed.
    assert threading_wait(lambda: 0 < upstream.streamed < 200_000_000), upstream.streamed


def threading_wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_default_cap_is_16_mib(server, upstream):
    data = call(server, "get", upstream.url + "/big/16777217")
    assert data == {"err": "response body larger than 16777216 bytes"}


# --- redirects ------------------------------------------------------------------------------

def test_redirects_are_not_followed_by_default(server, upstream):
    data = call(server, "get", upstream.url + "/redirect/1")
    assert data["status"] == 302 and data["headers"]["location"] == "/echo/redirected"


def test_redirects_followed_up_to_five(server, upstream):
    data = call(server, "get", upstream.url + "/redirect/5", {"follow_redirects": True})
    assert data["status"] == 200 and json.loads(data["body"])["path"] == "/echo/redirected"
    data = call(server, "get", upstream.url + "/redirect/6", {"follow_redirects": True})
    assert data == {"err": "too many redirects (more than 5)"}
    data = call(server, "get", upstream.url + "/redirect/6", {"follow_redirects": 6})
    assert data["status"] == 200


def test_redirect_303_turns_a_post_into_a_get(server, upstream):
    data = call(server, "post", upstream.url + "/see-other", "payload", {"follow_redirects": True})
    echo = json.loads(data["body"])
    assert (echo["method"], echo["path"], echo["body"]) == ("GET", "/echo/after-303", "")


def test_absolute_redirect(server, upstream):
    data = call(server, "get", upstream.url + "/absolute", {"follow_redirects": 1})
    assert json.loads(data["body"])["path"] == "/echo/absolute"


# --- TLS and HTTP/2 -------------------------------------------------------------------------

def test_tls_is_verified_against_the_system_store(server, tls_upstream):
    data = call(server, "get", tls_upstream.url + "/echo/tls")
    assert data["err"].startswith(f"TLS handshake with 127.0.0.1:{tls_upstream.port} failed: certificate verify failed"), data


def test_tls_with_the_test_ca(server, tls_upstream, certs):
    data = call(server, "get", tls_upstream.url + "/echo/tls", {"tls": {"ca": str(certs.ca)}})
    assert data["status"] == 200 and json.loads(data["body"])["path"] == "/echo/tls"


def test_tls_without_verification(server, tls_upstream):
    data = call(server, "get", tls_upstream.url + "/echo/insecure", {"tls": {"verify": False}})
    assert data["status"] == 200


def test_tls_with_another_ca_fails(server, tls_upstream, certs):
    data = call(server, "get", tls_upstream.url + "/echo/tls", {"tls": {"ca": str(certs.untrusted_ca)}})
    assert "certificate verify failed" in data["err"], data


def test_http2_by_alpn(server, certs):
    up = HTTP2Upstream(server_context(certs))
    try:
        for i in range(3):
            data = call(server, "get", up.url + f"/h2/{i}", {"tls": {"ca": str(certs.ca)}})
            assert data["status"] == 200, data
            assert json.loads(data["body"]) == {"method": "GET", "path": f"/h2/{i}", "protocol": "HTTP/2"}
        assert up.connections == 1            # one HTTP/2 connection carries them all
    finally:
        up.close()


# --- argument errors are raised -------------------------------------------------------------

@pytest.mark.parametrize("fn, args, message", [
    ("request", [{}], "moonwire.http.request: url is required (a string)"),
    ("request", ["http://x/"], "moonwire.http.request: expected a table of options {url=, ...}, got http://x/"),
    ("get", ["ftp://example.com/"], 'moonwire.http.get: expected an http:// or https:// URL, got "ftp://example.com/"'),
    ("get", ["http://127.0.0.1:1/", {"timout": 1}], "moonwire.http.get: unknown option timout"),
    ("get", ["http://127.0.0.1:1/", {"timeout": -1}], "moonwire.http.get: timeout must be a number of seconds above 0"),
    ("get", ["http://127.0.0.1:1/", {"headers": {"bad name": "x"}}], "moonwire.http.get: headers: bad name is not a header name"),
    ("get", ["http://127.0.0.1:1/", {"tls": {"ca": "/no/such/ca.pem"}}], "moonwire.http.get: tls.ca: cannot read /no/such/ca.pem"),
    ("post", ["http://127.0.0.1:1/"], "moonwire.http.post: expected the body as a string, got nil"),
    ("get", ["http://"], 'moonwire.http.get: bad URL "http://"'),
])
def test_argument_mistakes_raise(server, fn, args, message):
    assert message in raised(server, fn, *args)


def test_cannot_wait_while_the_scripts_load(server):
    text = server.get("/load-error").text
    assert "moonwire.http.get may only be called" in text and "not while the scripts load" in text, text


# --- others are not held --------------------------------------------------------------------

def test_other_requests_are_served_while_one_waits(server, upstream):
    slow = threading.Thread(target=lambda: call(server, "get", upstream.url + "/slow/2"))
    slow.start()
    try:
        time.sleep(0.3)
        # Order, not a stopwatch: all five are answered before the upstream's 2 s answer.
        assert [server.get("/fast").text for _ in range(5)] == ["fast"] * 5
        assert slow.is_alive(), "the fast requests were held until the slow one ended"
    finally:
        slow.join()


def test_a_hundred_concurrent_requests_from_one_handler(server, upstream):
    # Each upstream answer takes 0.5 s: one after the other they would take 50 s.
    started = time.monotonic()
    data = server.get("/concurrent", params={"url": upstream.url, "n": 100}, timeout=30).json()
    elapsed = time.monotonic() - started
    assert data["ok"] == 100 and not data["failures"], data   # an empty Lua table encodes as {}
    assert elapsed < 10, f"100 requests of 0.5 s took {elapsed:.1f} s: they did not run side by side"


# --- from other events ----------------------------------------------------------------------

def test_http_inside_on_message_keeps_the_message_order(moonwire, upstream):
    # Later messages get faster upstream answers; each reply still comes in the order sent.
    server = moonwire(f"""
function OnMessage(ws, text)
  local wait = 0.3 - 0.05 * tonumber(text)
  local response, err = moonwire.http.get("{upstream.url}/slow/" .. wait)
  ws:send(text .. " " .. (response and response.status or err))
end
""")
    async def scenario():
        async with websockets.connect(server.url.replace("http", "ws") + "/") as ws:
            for i in range(6):
                await ws.send(str(i))
            return [await ws.recv() for _ in range(6)]

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [f"{i} 200" for i in range(6)]
