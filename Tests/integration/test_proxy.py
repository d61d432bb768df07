"""The reverse proxy: moonwire.proxy routes, OnBeforeForwardHTTP and OnAfterForwardHTTP, against
real upstreams started here (upstreams.py: Python HTTP/1.1 servers, plain and TLS, and a raw
one whose answers a test writes byte by byte). Streaming both ways, header rewriting, round
robin with a dead server, 502/504, bad answers from upstream, and smuggling attempts."""
import hashlib
import socket
import ssl
import threading
import time

import httpx
import pytest

from harness import HOST, free_port, wait_until
from websockets.sync.client import connect

from upstreams import HTTP1Upstream, NginxUpstream, RawUpstream, WebSocketUpstream
from test_lua_http_client import server_context

SCRIPT = """
moonwire.proxy("/api/.*", "{up}/")
moonwire.proxy("/whole/.*", "{up}")
moonwire.proxy("/slow/.*", "{up}/", {{timeout = 1}})
moonwire.proxy("/rewrite/.*", "{up}/echo/v1/", {{
  headers = {{set = {{["x-added"] = "yes", ["x-drop"] = "replaced"}}, remove = {{"x-secret"}}}},
  via = true,
}})
moonwire.proxy("/keephost/.*", "{up}/", {{preserve_host = true}})
moonwire.proxy("/rr/.*", {{"{up}/", "{up2}/"}})
moonwire.proxy("/dead/.*", {{"http://{host}:{dead}/", "{up}/"}}, {{fail_timeout = 30}})
moonwire.proxy("/down/.*", "http://{host}:{dead}/")
moonwire.proxy("/raw/.*", "{raw}/")
moonwire.proxy("/tls/.*", "{tls}/", {{tls = {{ca = "{ca}"}}}})
moonwire.proxy("/tls-untrusted/.*", "{tls}/")
moonwire.proxy("/big/.*", "{raw}/", {{max_body_size = 2 * 1024 * 1024 * 1024}})
moonwire.proxy("/patient/.*", "{raw}/", {{timeout = 1}})
moonwire.proxy("/ws/.*", "{ws}/")
moonwire.get("/local", function(req, res) res:send("local answer") end)

function OnBeforeForwardHTTP(req)
  if req.path == "/event/url" then return "{up}/echo/from-event" end
  if req.path == "/event/table" then
    return {{url = "{up}/echo/t", headers = {{set = {{["x-event"] = "1"}}}}}}
  end
  if req.path == "/event/bad" then return 42 end
end

function OnAfterForwardHTTP(req, res, err)
  if req.path:find("^/down/") then
    res.status = 503
    res:send("no upstream: " .. err)
    return
  end
  if req.path == "/api/status/418" then res.status = 200 end
  res:header("x-after", "seen")
end
"""


@pytest.fixture(scope="module")
def ups(certs):
    up, up2 = HTTP1Upstream(), HTTP1Upstream()
    tls = HTTP1Upstream(tls=server_context(certs))
    raw = RawUpstream({})
    ws = WebSocketUpstream()
    yield {"up": up, "up2": up2, "tls": tls, "raw": raw, "ws": ws}
    for server in (up, up2, tls, raw, ws):
        server.close()


@pytest.fixture(scope="module")
def server(moonwire_module, ups, certs):
    main = SCRIPT.format(up=ups["up"].url, up2=ups["up2"].url, raw=ups["raw"].url, tls=f"https://localhost:{ups['tls'].port}", ws=ups["ws"].url,
                         ca=certs.ca, host=HOST, dead=free_port())
    return moonwire_module(main, threads=1)


def echo(response):
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_every_method_reaches_the_upstream_with_its_body(server, method):
    body = b"" if method in ("GET", "OPTIONS") else f"body of {method}".encode()
    seen = echo(httpx.request(method, f"{server.url}/api/echo/m?x=1&y=%20", content=body))
    assert seen["method"] == method
    assert seen["path"] == "/echo/m?x=1&y=%20"
    assert seen["body"] == body.decode()


def test_head_gets_the_head_alone(server):
    response = httpx.head(f"{server.url}/api/big/5000")
    assert response.status_code == 200
    assert response.headers["content-length"] == "5000"
    assert response.content == b""


def test_paths_are_rewritten_as_nginx_does(server):
    assert echo(httpx.get(f"{server.url}/rewrite/users/7?q=1"))["path"] == "/echo/v1/users/7?q=1"
    # A URL without a path sends the request's path as it is.
    assert httpx.get(f"{server.url}/whole/x").status_code == 404


def test_forwarded_fields_are_added_and_hop_by_hop_fields_removed(server, ups):
    seen = echo(httpx.get(f"{server.url}/rewrite/h", headers={
        "x-forwarded-for": "10.0.0.1", "connection": "x-private", "x-private": "no", "keep-alive": "timeout=5",
        "te": "gzip", "proxy-authorization": "Basic eDp5", "x-secret": "s", "x-drop": "original",
        "forwarded": "for=10.0.0.1"}))
    headers = seen["headers"]
    assert headers["x-forwarded-for"] == f"10.0.0.1, {HOST}"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"{HOST}:{server.port}"
    assert headers["forwarded"] == f'for=10.0.0.1, for={HOST};host="{HOST}:{server.port}";proto=http'
    assert headers["host"] == f"{HOST}:{ups['up'].port}"
    assert headers["x-added"] == "yes" and headers["x-drop"] == "replaced"
    assert headers["via"] == "1.1 moonwire"
    for gone in ("x-private", "keep-alive", "te", "proxy-authorization", "x-secret"):
        assert gone not in headers
    assert "keep-alive" not in headers.get("connection", "")


def test_preserve_host_sends_the_clients_host(server):
    assert echo(httpx.get(f"{server.url}/keephost/echo", headers={"host": "example.test"}))["headers"]["host"] == "example.test"


def test_answer_fields_pass_and_hop_by_hop_ones_do_not(server, ups):
    ups["raw"].answers["/hop"] = (b"HTTP/1.1 200 OK\r\nConnection: close, x-conn\r\nX-Conn: hidden\r\nKeep-Alive: timeout=3\r\n"
                                  b"X-Kept: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok")
    response = httpx.get(f"{server.url}/raw/hop")
    assert response.text == "ok"
    assert response.headers["x-kept"] == "1"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert "x-conn" not in response.headers and "keep-alive" not in response.headers
    assert response.headers["server"] == "moonwire"


def test_chunked_and_close_delimited_answers_stream_through(server, ups):
    streamed = httpx.get(f"{server.url}/api/stream/3000000")
    assert streamed.status_code == 200 and len(streamed.content) == 3000000
    assert streamed.headers.get("transfer-encoding") == "chunked"
    ups["raw"].answers["/until-close"] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"z" * 100000
    closed = httpx.get(f"{server.url}/raw/until-close")
    assert closed.status_code == 200 and closed.content == b"z" * 100000


def test_a_chunked_request_body_is_streamed_chunked(server):
    def pieces():
        for index in range(5):
            yield f"piece {index};".encode()
    seen = echo(httpx.post(f"{server.url}/api/echo/chunked", content=pieces()))
    assert seen["body"] == "".join(f"piece {index};" for index in range(5))


def test_round_robin_and_a_dead_server_left_out(server, ups):
    bodies = [echo(httpx.get(f"{server.url}/rr/echo")) for _ in range(6)]
    assert all(body["path"] == "/echo" for body in bodies)
    # Each server gets its own Host, and they take turns.
    hosts = [body["headers"]["host"] for body in bodies]
    assert hosts[:2] != [hosts[0]] * 2
    assert {f"{HOST}:{ups['up'].port}", f"{HOST}:{ups['up2'].port}"} == set(hosts)
    mark = server.log_mark()
    for _ in range(5):
        assert echo(httpx.get(f"{server.url}/dead/echo"))["path"] == "/echo"
    # The dead server was tried once, then left out for its fail_timeout.
    assert server.log_since(mark).count("upstream connect failed") == 1


def test_502_and_504(server):
    started = time.monotonic()
    assert httpx.get(f"{server.url}/slow/never", timeout=10).status_code == 504
    assert time.monotonic() - started < 5
    mark = server.log_mark()
    response = httpx.get(f"{server.url}/down/x")
    assert response.status_code == 503 and response.text.startswith("no upstream: connect to")
    assert "forward failed" in server.log_since(mark)


def test_on_before_forward_http(server):
    assert echo(httpx.get(f"{server.url}/event/url?a=b"))["path"] == "/echo/from-event/event/url?a=b"
    seen = echo(httpx.get(f"{server.url}/event/table"))
    assert seen["headers"]["x-event"] == "1"
    assert httpx.get(f"{server.url}/local").text == "local answer"
    mark = server.log_mark()
    assert httpx.get(f"{server.url}/event/bad").status_code == 500
    assert "OnBeforeForwardHTTP: expected nothing" in server.log_since(mark)


def test_on_after_forward_http_changes_the_head(server):
    response = httpx.get(f"{server.url}/api/status/418")
    assert response.status_code == 200 and response.text == "status 418"
    assert response.headers["x-after"] == "seen"


def test_tls_upstreams_are_verified(server):
    assert echo(httpx.get(f"{server.url}/tls/echo/secure"))["path"] == "/echo/secure"
    mark = server.log_mark()
    assert httpx.get(f"{server.url}/tls-untrusted/echo").status_code == 502
    assert "forward failed" in server.log_since(mark)


def test_a_bare_cr_or_lf_in_an_upstream_field_is_refused(server, ups):
    ups["raw"].answers["/split-cr"] = b"HTTP/1.1 200 OK\r\nX-Bad: a\rSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n"
    ups["raw"].answers["/split-nul"] = b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 0\r\n\r\n"
    for path in ("/raw/split-cr", "/raw/split-nul"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 502
        assert "evil" not in str(response.headers)


@pytest.mark.parametrize("request_bytes", [
    b"POST /raw/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /raw/second HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /raw/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n"
    b"abcdGET /raw/second HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_smuggled_requests_never_reach_the_upstream_as_two(server, ups, request_bytes):
    raw = ups["raw"]
    raw.answers["/smuggle"] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with raw.lock:
        raw.requests.clear()
    reply = server.raw(request_bytes, idle=2, total=5)
    assert reply.data.startswith(b"HTTP/1.1 400")
    time.sleep(0.3)
    with raw.lock:
        assert not any("/second" in head for head, _ in raw.requests)
    server.assert_alive("/local")


def _hashing_upstream(raw, size):
    """/sink hashes what it is sent; /source sends `size` bytes of a known pattern."""
    digests = {}

    def sink(sock, head, data):
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        digest = hashlib.sha256(data)
        have = len(data)
        while have < length:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            have += len(chunk)
        digests["sink"] = (digest.hexdigest(), have)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def source(sock, head, data):
        block = bytes(range(256)) * 1024
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        sent = 0
        try:
            while sent < size:
                sock.sendall(block[:min(len(block), size - sent)])
                sent += min(len(block), size - sent)
        except OSError:
            pass
        digests["sent"] = sent
    raw.answers["/sink"] = sink
    raw.answers["/source"] = source
    return digests


def test_a_large_upload_and_download_stream_in_bounded_memory(server, ups):
    size = 1024 * 1024 * 1024
    digests = _hashing_upstream(ups["raw"], size)
    block = bytes(range(256)) * 1024
    expected = hashlib.sha256()
    for _ in range(size // len(block)):
        expected.update(block)
    peak = [server.rss_mib()]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_mib())
            time.sleep(0.1)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        def upload():
            for _ in range(size // len(block)):
                yield block
        response = httpx.post(f"{server.url}/big/sink", content=upload(), headers={"content-length": str(size)}, timeout=300)
        assert response.status_code == 200
        assert digests["sink"] == (expected.hexdigest(), size)
        received = hashlib.sha256()
        count = 0
        with httpx.stream("GET", f"{server.url}/big/source", timeout=300) as streamed:
            for piece in streamed.iter_raw():
                received.update(piece)
                count += len(piece)
        assert count == size and received.hexdigest() == expected.hexdigest()
    finally:
        done.set()
        watcher.join()
    print(f"1 GiB up and down through the proxy: peak RSS {peak[0]:.1f} MiB")
    assert peak[0] < 100, f"RSS reached {peak[0]:.1f} MiB"


def test_a_client_leaving_mid_download_cancels_the_upstream(server, ups):
    size = 512 * 1024 * 1024
    digests = _hashing_upstream(ups["raw"], size)
    sock = socket.create_connection((HOST, server.port))
    sock.sendall(b"GET /big/source HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()
    assert wait_until(lambda: "sent" in digests, timeout=20)
    assert digests["sent"] < size
    server.assert_alive("/local")


def test_a_client_that_never_reads_holds_back_the_upstream(server, ups):
    size = 256 * 1024 * 1024
    digests = _hashing_upstream(ups["raw"], size)
    sock = socket.create_connection((HOST, server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /big/source HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(2)
    assert server.rss_mib() < 100
    assert "sent" not in digests
    server.assert_alive("/local")
    sock.close()
    assert wait_until(lambda: "sent" in digests, timeout=20)


def test_an_http2_client_reaches_an_http1_upstream(server):
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        response = client.post(f"{server.url}/api/echo/h2", content=b"over h2")
        assert response.http_version == "HTTP/2"
        seen = echo(response)
        assert seen["protocol"] == "HTTP/1.1" and seen["body"] == "over h2"
        assert seen["headers"]["x-forwarded-host"] == f"{HOST}:{server.port}"

        def pieces():
            yield b"no "
            yield b"length"
        assert echo(client.post(f"{server.url}/api/echo/h2", content=pieces()))["body"] == "no length"
        assert echo(client.get(f"{server.url}/api/echo/h2-get"))["body"] == ""
        streamed = client.get(f"{server.url}/api/stream/1000000")
        assert streamed.status_code == 200 and len(streamed.content) == 1000000


def test_a_websocket_chat_through_the_proxy(server, ups):
    url = f"ws://{HOST}:{server.port}/ws/chat"
    with connect(url, subprotocols=["chat"]) as alice, connect(url) as bob:
        assert alice.subprotocol == "chat"
        wait_until(lambda: len(ups["ws"].clients) >= 2)
        alice.send("hello from alice")
        assert bob.recv(timeout=5) == "hello from alice"
        assert alice.recv(timeout=5) == "hello from alice"
        bob.send(b"\x00binary\xff" * 1000)
        assert alice.recv(timeout=5) == b"\x00binary\xff" * 1000
        assert bob.recv(timeout=5) == b"\x00binary\xff" * 1000
        big = "x" * 300000
        alice.send(big)
        assert bob.recv(timeout=10) == big
    path, host, forwarded = ups["ws"].seen[-1]
    assert path == "/chat" and forwarded == HOST
    # Closing the clients closed their upstream connections.
    assert wait_until(lambda: not ups["ws"].clients, timeout=5)


def test_an_upstream_that_closes_closes_the_client(server, ups):
    with connect(f"ws://{HOST}:{server.port}/ws/echo") as client:
        client.send("ping")
        assert client.recv(timeout=5) == "ping"
        assert wait_until(lambda: ups["ws"].clients, timeout=5)
        for peer in list(ups["ws"].clients):
            peer.close()
        with pytest.raises(Exception):
            client.recv(timeout=5)
    server.assert_alive("/local")


def test_a_refused_upgrade_answers_with_the_upstreams_status(server):
    response = httpx.get(f"{server.url}/api/status/403", headers={
        "connection": "upgrade", "upgrade": "websocket", "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert response.status_code in (403, 404)


def test_an_nginx_upstream_with_ranges_and_validators(moonwire, tmp_path):
    import os
    root = tmp_path / "files"
    root.mkdir()
    content = os.urandom(20 * 1024 * 1024)
    (root / "blob.bin").write_bytes(content)
    nginx = NginxUpstream(root, tmp_path / "nginx")
    try:
        server = moonwire(f'moonwire.proxy("/files/.*", "{nginx.url}/")')
        whole = httpx.get(f"{server.url}/files/blob.bin", timeout=60)
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).digest() == hashlib.sha256(content).digest()
        etag = whole.headers["etag"]
        part = httpx.get(f"{server.url}/files/blob.bin", headers={"range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(content)}"
        assert httpx.get(f"{server.url}/files/blob.bin", headers={"if-none-match": etag}).status_code == 304
        head = httpx.head(f"{server.url}/files/blob.bin")
        assert head.headers["content-length"] == str(len(content)) and head.content == b""
        assert httpx.get(f"{server.url}/files/missing.bin").status_code == 404
    finally:
        nginx.close()


def test_a_slow_client_is_not_an_upstream_timeout(server, ups):
    # The upstream is held back while the client does not read; that silence is not the
    # upstream's, so `timeout = 1` does not cut the answer of a client pausing for 3 s.
    size = 64 * 1024 * 1024
    _hashing_upstream(ups["raw"], size)
    sock = socket.create_connection((HOST, server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /patient/source HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    time.sleep(3)
    received = bytearray()
    sock.settimeout(10)
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    block = bytes(range(256)) * 1024
    assert len(body) == size and body[:len(block)] == block and body[-len(block):] == block
