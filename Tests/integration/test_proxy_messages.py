"""The reverse proxy's message details against a raw upstream (upstreams.RawUpstream) whose
answers the tests write byte by byte: interim (1xx) heads relayed to HTTP/1.1 and HTTP/2
clients (never taken for the answer), Expect: 100-continue answered once, trailer fields
relayed after a chunked body, and the bounds on each (1xx heads without end, malformed ones,
trailer sections without end). Also the keys a forward's options take. Every test runs on a
server without OnAfterForwardHTTP and on one with it (the answer then waits for the event)."""
import socket

import httpx
import pytest

from harness import HOST, parse_one, read_until_close, run_cli
from http2_client import H2Client, Target
from upstreams import RawUpstream

SCRIPT = """
moonwire.proxy("/raw/.*", "{raw}/")
moonwire.get("/local", function(req, res) res:send("local answer") end)

function OnBeforeForwardHTTP(req)
  if req.path == "/event/route-key" then return {{url = "{raw}/never-asked", fail_timeout = 5}} end
  if req.path == "/event/body-size" then return {{url = "{raw}/never-asked", max_body_size = 10}} end
  if req.path == "/event/unknown" then return {{url = "{raw}/never-asked", colour = "red"}} end
end
"""

HOOK = """
function OnAfterForwardHTTP(req, res, err)
  if req.path == "/raw/cut" then moonwire.sleep(0.3) end
  res:header("x-after", "seen")
end
"""

HINTS = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
         b"HTTP/1.1 102 Processing\r\n\r\n"
         b"HTTP/1.1 100 Continue\r\n\r\n"
         b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal")

TRAILERS = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n"
            b"X-Checksum: abc\r\nContent-Length: 99\r\nSet-Cookie: late=1\r\nConnection: close\r\n\r\n")


@pytest.fixture(scope="module")
def raw():
    upstream = RawUpstream({"/hints": HINTS, "/trailers": TRAILERS})
    yield upstream
    upstream.close()


@pytest.fixture(scope="module", params=["plain", "hooked"])
def server(request, moonwire_module, raw):
    main = SCRIPT.format(raw=raw.url) + (HOOK if request.param == "hooked" else "")
    started = moonwire_module(main, threads=1)
    started.hooked = request.param == "hooked"
    return started


def get(server, path, headers=b"", version=b"1.1"):
    """The raw bytes of one answer to GET `path` on a connection of its own."""
    request = b"GET %s HTTP/%s\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (path, version, headers)
    return server.raw(request, idle=3, total=10).data


def upstream_head(raw, path):
    with raw.lock:
        return [head for head, _ in raw.requests if f" {path} " in head][-1].lower() + "\r\n"


# --- interim (1xx) heads -------------------------------------------------------------------

def test_interim_heads_reach_an_http11_client_before_the_answer(server, raw):
    data = get(server, b"/raw/hints")
    heads = data.split(b"\r\n\r\n")
    assert heads[0].startswith(b"HTTP/1.1 103 Early Hints\r\n")
    assert b"link: </style.css>; rel=preload" in heads[0].lower()
    assert heads[1].startswith(b"HTTP/1.1 102 ")
    # The upstream's 100 answers an Expect it never saw: it is not relayed.
    assert heads[2].startswith(b"HTTP/1.1 200 OK") and heads[3] == b"final"
    assert b" 100 " not in data
    # A client that does not look at 1xx heads gets the answer.
    response = httpx.get(f"{server.url}/raw/hints")
    assert response.status_code == 200 and response.text == "final"
    # A 1xx has no content: a length it claims is neither read nor relayed.
    raw.answers["/hints-length"] = (b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\nLink: </a.css>\r\n\r\n"
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    data = get(server, b"/raw/hints-length")
    assert b"content-length" not in data.split(b"\r\n\r\n")[0].lower()
    assert parse_one(data).body == b"ok"


def test_an_http10_client_gets_no_interim_head(server):
    data = get(server, b"/raw/hints", version=b"1.0")
    assert data.startswith(b"HTTP/1.0 200 OK") and data.endswith(b"final")


def test_expect_100_continue_is_answered_once_by_moonwire(server, raw):
    def answer(sock, head, data):
        while len(data) < 5:
            data += sock.recv(65536)
        with raw.lock:
            raw.requests.append(("body " + data.decode(), b""))
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
    raw.answers["/expect"] = answer
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(b"POST /raw/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"hello")
        whole = first + read_until_close(sock).data
    assert whole.count(b" 100 ") == 1
    assert b"HTTP/1.1 200 OK" in whole and whole.endswith(b"done")
    assert "\r\nexpect:" not in upstream_head(raw, "/expect")
    with raw.lock:
        assert "body hello" in [head for head, _ in raw.requests]


def test_interim_heads_without_end_get_a_502(server, raw):
    def endless(sock, head, data):
        try:
            for _ in range(200000):
                sock.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
        except OSError:
            pass  # the proxy gave up and closed: what the bound is for
    raw.answers["/endless-interim"] = endless
    mark = server.log_mark()
    response = httpx.get(f"{server.url}/raw/endless-interim", timeout=20)
    assert response.status_code == 502
    log = server.log_since(mark)
    assert "forward failed" in log and "bytes of interim (1xx) heads" in log
    server.assert_alive("/local")


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 103 Early Hints\r\nLink </style.css>\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\rSet-Cookie: evil=1\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 1x3 Early Hints\r\n\r\n",
    b"HTTP/1.1 99 Low\r\n\r\n",
    # A 101 to a request that asked for no upgrade.
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: other\r\n\r\n",
], ids=["no-colon", "bare-cr", "transfer-encoding", "bad-status", "short-status", "unasked-101"])
def test_a_malformed_interim_head_gets_a_502(server, raw, answer):
    raw.answers["/bad-interim"] = answer + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    mark = server.log_mark()
    response = httpx.get(f"{server.url}/raw/bad-interim")
    assert response.status_code == 502 and "evil" not in str(response.headers)
    assert "forward failed" in server.log_since(mark)


# --- trailer fields ------------------------------------------------------------------------

def test_trailers_reach_an_http11_client_after_a_chunked_body(server, raw):
    data = get(server, b"/raw/trailers", b"TE: trailers\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower() and b"trailer: x-checksum" in head.lower()
    # Fields that must come before the content, and hop-by-hop ones, do not follow it.
    assert body.endswith(b"0\r\nX-Checksum: abc\r\n\r\n"), body
    assert b"late=1" not in body and b"99" not in body
    # The client said it takes trailers; the upstream was told, on its own hop.
    sent = upstream_head(raw, "/trailers")
    assert "\r\nte: trailers\r\n" in sent and "\r\nconnection: te\r\n" in sent
    # Every HTTP/1.1 client parses a chunked body's trailer section: they go without TE too.
    assert get(server, b"/raw/trailers").endswith(b"0\r\nX-Checksum: abc\r\n\r\n")
    assert "te:" not in upstream_head(raw, "/trailers")
    assert httpx.get(f"{server.url}/raw/trailers").text == "hello world"
    # HTTP/1.0 has no chunks: the body ends with the connection and the trailers stay behind.
    old = get(server, b"/raw/trailers", version=b"1.0")
    assert old.startswith(b"HTTP/1.0 200") and old.endswith(b"\r\n\r\nhello world")


def test_an_http2_client_gets_interim_heads_and_trailers(server):
    with H2Client(Target(False, server.port, None)) as client:
        hinted = client.get("/raw/hints")
        assert hinted.status == 200 and bytes(hinted.body) == b"final"
        assert [head[":status"] for head in hinted.informational] == ["103", "102"]
        assert hinted.informational[0]["link"] == "</style.css>; rel=preload"
        trailed = client.get("/raw/trailers", headers=[("te", "trailers")])
        assert trailed.status == 200 and bytes(trailed.body) == b"hello world"
        assert trailed.trailers == {"x-checksum": "abc"}
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.get(f"{server.url}/raw/trailers")
        assert response.http_version == "HTTP/2" and response.text == "hello world"


@pytest.mark.parametrize("trailer_lines", [
    b"X-Pad: " + b"p" * 1000 + b"\r\n",          # sent without end: cut off at the cap
    b"X-Good: 1\r\nnot a field\r\n\r\n",          # malformed
], ids=["endless", "malformed"])
def test_bad_trailers_are_dropped_and_the_body_still_ends(server, raw, trailer_lines):
    def answer(sock, head, data):
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n")
        try:
            for _ in range(100000 if trailer_lines.startswith(b"X-Pad") else 1):
                sock.sendall(trailer_lines)
        except OSError:
            pass  # the proxy stopped reading and closed
    raw.answers["/bad-trailers"] = answer
    mark = server.log_mark()
    data = get(server, b"/raw/bad-trailers", b"TE: trailers\r\n")
    answer = parse_one(data)
    assert answer.status == 200 and answer.body == b"hello" and b"X-" not in data, data[-200:]
    assert "upstream trailer fields dropped" in server.log_since(mark)
    server.assert_alive("/local")


def test_an_answer_cut_off_is_never_passed_off_as_whole(server, raw):
    # With OnAfterForwardHTTP, the upstream breaks off while the event still decides.
    def cut(sock, head, data):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    raw.answers["/cut"] = cut
    mark = server.log_mark()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{server.url}/raw/cut", timeout=5)
    assert "upstream answer cut off" in server.log_since(mark)
    server.assert_alive("/local")


def test_a_bad_body_right_behind_the_head(server, raw):
    raw.answers["/bad-chunk"] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    if server.hooked:
        # OnAfterForwardHTTP let the head through: the client's answer is cut off.
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{server.url}/raw/bad-chunk", timeout=5)
    else:
        # Nothing had reached the client yet: the status says it.
        assert httpx.get(f"{server.url}/raw/bad-chunk", timeout=5).status_code == 502


# --- the keys a forward takes --------------------------------------------------------------

@pytest.mark.parametrize("path, message", [
    ("/event/route-key", "fail_timeout is an option of moonwire.proxy routes, not of a forward"),
    ("/event/body-size", "max_body_size is an option of moonwire.proxy routes, not of a forward"),
    ("/event/unknown", "unknown option colour"),
])
def test_the_forward_table_refuses_keys_it_does_not_take(server, raw, path, message):
    mark = server.log_mark()
    assert httpx.get(f"{server.url}{path}").status_code == 500
    log = server.log_since(mark)
    assert f"OnBeforeForwardHTTP: {message}" in log
    assert "url, headers, timeout, connect_timeout, preserve_host, via, tls" in log
    with raw.lock:
        assert not any("/never-asked" in head for head, _ in raw.requests)


@pytest.mark.parametrize("script, message", [
    ('moonwire.proxy("/a/.*", "http://127.0.0.1:9/", {colour = "red"})',
     "moonwire.proxy: unknown option colour (options are headers, timeout, connect_timeout, preserve_host, via, tls, "
     "fail_timeout, max_body_size, auth, methods)"),
    ('local admin = moonwire.vhost([[admin\\.test]])\nadmin:proxy("/.*", "http://127.0.0.1:9/", {fail_timout = 3})',
     "host:proxy: unknown option fail_timout"),
    ('moonwire.proxy("/a/.*", "http://127.0.0.1:9/", {headers = {sett = {}}})', "unknown option headers.sett"),
    ('moonwire.proxy("/a/.*", "http://127.0.0.1:9/", {tls = {verfy = false}})', "unknown option tls.verfy"),
], ids=["route", "vhost", "headers", "tls"])
def test_unknown_route_options_are_load_errors(tmp_path, script, message):
    (tmp_path / "main.lua").write_text(script + "\n")
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result.stdout + result.stderr
