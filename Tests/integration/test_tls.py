"""TLS listeners (moonwire.listen{tls=}): certificates, SNI per virtual host, ALPN and its event,
client certificates with OnSSLVerifyPeer, minimum versions, and HTTP/1.1 and WebSocket over
TLS; Python's ssl, httpx, websockets and curl as clients, loopback only."""
import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest
import websockets

from harness import free_port, run_cli, wait_until
from tls_certs import client_context, common_name, handshake, listen_line, start_tls, tls_table

INFO = r"""
moonwire.get("/info", function(req, res)
  res:json({version = req.version, scheme = req.scheme, method = req.method, path = req.path})
end)
function OnMessage(ws, text) ws:send("echo " .. text) end
"""


def fetch(url, context):
    with httpx.Client(verify=context, timeout=5) as client:
        return client.get(url)


def curl(*arguments):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    result = subprocess.run(["curl", "-sS", "--max-time", "10", *arguments], capture_output=True,
                            text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- listeners -----------------------------------------------------------------------------

def test_plain_and_tls_listeners_both_serve(moonwire, certs):
    server = start_tls(moonwire, certs, INFO)
    log = server.log()
    assert f"listening on http://127.0.0.1:{server.port}" in log
    assert f"listening on https://127.0.0.1:{server.tls_port}" in log
    secure = fetch(server.tls_url + "/info", client_context(certs))
    assert secure.status_code == 200 and secure.http_version == "HTTP/1.1"
    assert secure.json() == {"version": "1.1", "scheme": "https", "method": "GET", "path": "/info"}
    plain = server.get("/info")
    assert plain.json()["scheme"] == "http" and plain.json()["version"] == "1.1"


def test_two_tls_listeners(moonwire, certs):
    second = free_port()
    server = start_tls(moonwire, certs, listen_line(second, certs.localhost) + INFO)
    assert server.wait_for_log(f"listening on https://127.0.0.1:{second}"), server.log()
    for port in (server.tls_port, second):
        reply = fetch(f"https://127.0.0.1:{port}/info", client_context(certs))
        assert reply.status_code == 200 and reply.json()["scheme"] == "https"


def test_certificate_verifies_by_name_and_by_ip(moonwire, certs):
    server = start_tls(moonwire, certs, INFO)
    version, _, peer = handshake(server.tls_port, client_context(certs), server_hostname="localhost")
    assert common_name(peer) == "localhost"
    assert version in ("TLSv1.2", "TLSv1.3")
    _, _, peer = handshake(server.tls_port, client_context(certs), server_hostname="127.0.0.1")
    assert ("IP Address", "127.0.0.1") in peer["subjectAltName"]


def test_plain_http_on_the_tls_port_does_not_harm_it(moonwire, certs):
    server = start_tls(moonwire, certs, INFO)
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as raw:
        raw.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x16\x03\x01garbage" * 10)
        raw.settimeout(5)
        try:
            answer = raw.recv(4096)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert b'"scheme"' not in answer, "the TLS listener answered cleartext HTTP"
    assert fetch(server.tls_url + "/info", client_context(certs)).status_code == 200


# --- ALPN ----------------------------------------------------------------------------------

@pytest.mark.parametrize("offered, chosen", [
    (["h2", "http/1.1"], "h2"),
    (["http/1.1", "h2"], "h2"),              # the server's preference: h2 first
    (["http/1.1"], "http/1.1"),
    (["h2"], "h2"),
])
def test_alpn_offers_h2_and_http11(moonwire, certs, offered, chosen):
    server = start_tls(moonwire, certs, INFO)
    _, protocol, _ = handshake(server.tls_port, client_context(certs, alpn=offered))
    assert protocol == chosen


def test_no_alpn_is_http11(moonwire, certs):
    server = start_tls(moonwire, certs, INFO)
    _, protocol, _ = handshake(server.tls_port, client_context(certs))
    assert protocol is None
    assert fetch(server.tls_url + "/info", client_context(certs)).json()["version"] == "1.1"


ALPN_HOOK = r"""
function OnSSLALPNSelect(conn, protocols)
  moonwire.log.info("alpn offered " .. table.concat(protocols, ","))
  for _, protocol in ipairs(protocols) do
    if protocol == "x-legacy" then return "http/1.1" end
  end
  return nil
end
"""


def test_alpn_select_event_sees_the_offer_and_chooses(moonwire, certs):
    server = start_tls(moonwire, certs, INFO + ALPN_HOOK)
    _, protocol, _ = handshake(server.tls_port, client_context(certs, alpn=["h2", "http/1.1", "x-legacy"]))
    assert protocol == "http/1.1"
    assert server.wait_for_log("alpn offered h2,http/1.1,x-legacy"), server.log()
    _, protocol, _ = handshake(server.tls_port, client_context(certs, alpn=["h2", "http/1.1"]))
    assert protocol == "h2", "returning nil keeps the server's choice"
    deadline = time.monotonic() + 5
    while server.log().count("alpn offered h2,http/1.1") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.log().count("alpn offered h2,http/1.1") == 2, server.log()


def test_curl_http11_and_http2_over_tls(moonwire, certs):
    server = start_tls(moonwire, certs, INFO)
    common = ["--cacert", str(certs.ca), "-w", "\n%{http_version}"]
    body, version = curl("--http1.1", *common, server.tls_url + "/info").rsplit("\n", 1)
    assert version == "1.1" and json.loads(body) == {"version": "1.1", "scheme": "https", "method": "GET", "path": "/info"}
    body, version = curl("--http2", *common, server.tls_url + "/info").rsplit("\n", 1)
    assert version == "2" and json.loads(body)["version"] == "2"


# --- SNI -----------------------------------------------------------------------------------

SNI_APP = r"""
local a = moonwire.vhost([[^a\.test$]], {tls = TLS_A})
a:get("/who", function(req, res) res:send("vhost a") end)
local b = moonwire.vhost([[^b\.test$]], {tls = TLS_B})
b:get("/who", function(req, res) res:send("vhost b") end)
moonwire.get("/who", function(req, res) res:send("default host") end)
"""


@pytest.fixture
def sni_server(moonwire, certs):
    main = SNI_APP.replace("TLS_A", tls_table(certs.a_test)).replace("TLS_B", tls_table(certs.b_test))
    return start_tls(moonwire, certs, main)


@pytest.mark.parametrize("name, expected", [
    ("a.test", "a.test"),
    ("b.test", "b.test"),
    ("localhost", "localhost"),
    ("c.test", "localhost"),                 # no vhost matches: the listener's certificate
    ("127.0.0.1", "localhost"),              # an IP address sends no SNI at all
])
def test_sni_picks_the_virtual_host_certificate(sni_server, certs, name, expected):
    context = client_context(certs, check_hostname=False)
    _, _, peer = handshake(sni_server.tls_port, context, server_hostname=name)
    assert common_name(peer) == expected


def test_sni_with_curl_resolve_verifies_and_routes(sni_server, certs):
    port = sni_server.tls_port
    for name in ("a.test", "b.test"):
        body = curl("--resolve", f"{name}:{port}:127.0.0.1", "--cacert", str(certs.ca), f"https://{name}:{port}/who")
        assert body == f"vhost {name[0]}"
    assert curl("--cacert", str(certs.ca), f"https://127.0.0.1:{port}/who") == "default host"


# --- client certificates -------------------------------------------------------------------

VERIFY_HOOK = r"""
function OnSSLVerifyPeer(conn, cert)
  moonwire.sleep(0.05)                     -- the handshake waits for the hook's answer
  moonwire.log.info("verify-peer subject=" .. tostring(cert.subject) .. " issuer=" .. tostring(cert.issuer)
    .. " serial=" .. tostring(cert.serial) .. " pem=" .. tostring(cert.pem):sub(1, 27)
    .. " not_before=" .. tostring(cert.not_before) .. " not_after=" .. tostring(cert.not_after))
  if tostring(cert.subject):find("blocked%-client") then return false end
  return true
end
"""


def refused(server, context):
    """True when the TLS listener refused the connection (during or right after the handshake:
    with TLS 1.3 the client learns of the refusal on its first read)."""
    try:
        reply = fetch(server.tls_url + "/info", context)
    except httpx.TransportError:
        return True
    return reply.status_code != 200


def verify_lines(server):
    return [line for line in server.log().splitlines() if "verify-peer subject=" in line]


def test_required_client_certificate(moonwire, certs):
    server = start_tls(moonwire, certs, INFO + VERIFY_HOOK, client_ca=str(certs.ca), verify_peer="required")
    assert refused(server, client_context(certs)), "no client certificate must be refused"
    assert refused(server, client_context(certs, client=certs.untrusted_client)), "an untrusted CA must be refused"
    assert refused(server, client_context(certs, client=certs.blocked_client)), "OnSSLVerifyPeer returned false"
    reply = fetch(server.tls_url + "/info", client_context(certs, client=certs.good_client))
    assert reply.status_code == 200 and reply.json()["scheme"] == "https"

    lines = verify_lines(server)
    assert any("good-client" in line for line in lines), server.log()
    assert any("blocked-client" in line for line in lines), "OnSSLVerifyPeer saw the blocked client"
    assert not any("untrusted-client" in line for line in lines), "OnSSLVerifyPeer runs only after the chain verified"
    good = next(line for line in lines if "good-client" in line)
    assert "Moonwire Test CA" in good.split("issuer=", 1)[1].split(" serial=", 1)[0]
    assert "pem=-----BEGIN CERTIFICATE-----" in good
    for field in ("serial", "not_before", "not_after"):
        assert f"{field}=nil" not in good, f"cert.{field} is missing: {good}"


def test_optional_client_certificate(moonwire, certs):
    server = start_tls(moonwire, certs, INFO + VERIFY_HOOK, client_ca=str(certs.ca), verify_peer="optional")
    assert fetch(server.tls_url + "/info", client_context(certs)).status_code == 200
    assert not verify_lines(server), "no certificate, no OnSSLVerifyPeer"
    assert fetch(server.tls_url + "/info", client_context(certs, client=certs.good_client)).status_code == 200
    assert any("good-client" in line for line in verify_lines(server)), server.log()
    assert refused(server, client_context(certs, client=certs.blocked_client)), "OnSSLVerifyPeer returned false"


# --- versions ------------------------------------------------------------------------------

LOCAL_FAILURES = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "NO_SUITABLE")


def assert_refused_by_server(port, context):
    with pytest.raises((ssl.SSLError, ConnectionError)) as error:
        handshake(port, context)
    assert not any(reason in str(error.value) for reason in LOCAL_FAILURES), \
        f"the client could not even offer its versions: {error.value}"


def test_min_version_12_refuses_tls11(moonwire, certs):
    server = start_tls(moonwire, certs, INFO, min_version="1.2")
    tls11 = client_context(certs, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    assert_refused_by_server(server.tls_port, tls11)
    version, _, _ = handshake(server.tls_port, client_context(certs, maximum=ssl.TLSVersion.TLSv1_2))
    assert version == "TLSv1.2", "the default minimum 1.2 accepts TLS 1.2"


def test_default_min_version_refuses_tls11(moonwire, certs):
    server = start_tls(moonwire, certs, INFO)
    tls11 = client_context(certs, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    assert_refused_by_server(server.tls_port, tls11)


def test_min_version_13_refuses_tls12(moonwire, certs):
    server = start_tls(moonwire, certs, INFO, min_version="1.3")
    assert_refused_by_server(server.tls_port, client_context(certs, maximum=ssl.TLSVersion.TLSv1_2))
    version, _, _ = handshake(server.tls_port, client_context(certs))
    assert version == "TLSv1.3"
    assert fetch(server.tls_url + "/info", client_context(certs)).status_code == 200


# --- WebSocket -----------------------------------------------------------------------------

def test_websocket_over_wss(moonwire, certs):
    server = start_tls(moonwire, certs, INFO)

    async def scenario():
        url = f"wss://127.0.0.1:{server.tls_port}/"
        async with websockets.connect(url, ssl=client_context(certs), compression=None) as ws:
            await ws.send("hello")
            first = await ws.recv()
            await ws.send("x" * 100_000)
            second = await ws.recv()
            return first, second
    first, second = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert first == "echo hello"
    assert second == "echo " + "x" * 100_000


# --- certificate reload and bad settings ---------------------------------------------------

def test_certificates_reload_without_closing_open_connections(moonwire, certs):
    """A reload reads the certificates again: new handshakes get the new one, a connection
    opened before keeps working."""
    server = start_tls(moonwire, certs, INFO)
    context = client_context(certs, check_hostname=False)
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as old:
            assert common_name(old.getpeercert()) == "localhost"
            main = (server.scripts / "main.lua").read_text()
            swapped = main.replace(str(certs.localhost.cert), str(certs.a_test.cert))
            swapped = swapped.replace(str(certs.localhost.key), str(certs.a_test.key))
            assert swapped != main
            (server.scripts / "main.lua").write_text(swapped)
            assert server.wait_for_log("scripts reloaded", timeout=10), server.log()
            _, _, peer = handshake(server.tls_port, context, server_hostname="localhost")
            assert common_name(peer) == "a.test"
            old.sendall(b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = old.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200"), reply


@pytest.mark.parametrize("tls, message", [
    ('{cert = "/nonexistent/cert.pem", key = "KEY"}', "/nonexistent/cert.pem"),
    ('{cert = "CERT", key = "/nonexistent/key.pem"}', "/nonexistent/key.pem"),
    ('{cert = "CERT"}', "cert and key"),
    ('{cert = "CERT", key = "KEY", min_version = "1.0"}', "min_version"),
    ('{cert = "CERT", key = "KEY", verify_peer = "required"}', "client_ca"),
    ('{cert = "CERT", key = "KEY", verify_peer = "sometimes", client_ca = "CERT"}', "verify_peer"),
    ('"not a table"', "expected a table"),
])
def test_bad_tls_settings_fail_the_load_at_their_line(certs, tmp_path, tls, message):
    """`moonwire check` and `moonwire serve` both refuse a tls table they cannot use, naming the
    line; a certificate is read when the script runs, not when a client arrives."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    tls = tls.replace("CERT", str(certs.localhost.cert)).replace("KEY", str(certs.localhost.key))
    (scripts / "main.lua").write_text(f"-- line 1\nmoonwire.listen{{port = {free_port()}, tls = {tls}}}\n")
    check = run_cli("check", "--scripts", scripts)
    assert check.returncode == 1
    assert "main.lua:2:" in check.stdout + check.stderr and message in check.stdout + check.stderr, check
    serve = run_cli("serve", "--port", "0", "--scripts", scripts, "--www", tmp_path)
    assert serve.returncode == 1
    assert "main.lua:2:" in serve.stderr and message in serve.stderr, serve.stderr


def test_a_key_that_does_not_match_the_certificate_refuses_to_start(certs, tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    tls = tls_table(type(certs.localhost)(cert=certs.localhost.cert, key=certs.a_test.key))
    (scripts / "main.lua").write_text(f"moonwire.listen{{port = {free_port()}, tls = {tls}}}\n")
    serve = run_cli("serve", "--port", "0", "--scripts", scripts, "--www", tmp_path)
    assert serve.returncode == 1, serve.stderr
    assert "cannot listen" in serve.stderr


def client_hello(certs):
    """The bytes of a ClientHello (offering h2 and http/1.1), as a client sends it first."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(certs, alpn=["h2", "http/1.1"]).wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_stalled_client_hellos_are_closed_after_the_header_timeout(moonwire, certs):
    # 1,000 connections that send a ClientHello and nothing more stayed open for ever, a
    # descriptor each; the handshake must now be over within header_timeout (4 s here).
    server = start_tls(moonwire, certs, INFO + "moonwire.options{ limits = { header_timeout = 4 } }\n")
    hello, sockets = client_hello(certs), []
    baseline, mark = server.descriptors(), server.log_mark()
    try:
        for _ in range(1000):                               # the kernel queues them; the server accepts
            sock = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
            sock.sendall(hello)
            sockets.append(sock)
        # Accepted and held (a debug build accepts about 400 a second here; the first time
        # out 4 s after their accept, so the count peaks before it falls).
        assert wait_until(lambda: server.descriptors() >= baseline + 500, timeout=10), \
            f"only {server.descriptors() - baseline} stalled clients held"
        asked = time.monotonic()
        assert fetch(f"{server.tls_url}/info", client_context(certs)).status_code == 200
        assert time.monotonic() - asked < 5, "a client was kept waiting behind the stalled handshakes"
        assert wait_until(lambda: server.descriptors() <= baseline + 10, timeout=15), \
            f"{server.descriptors() - baseline} stalled handshakes still open"
        for sock in sockets:                                 # each was closed: EOF after the server's hello
            sock.settimeout(5)
            for _ in range(100):
                try:
                    if not sock.recv(65536):
                        break
                except ConnectionResetError:
                    break
    finally:
        for sock in sockets:
            sock.close()
    assert server.wait_for_log("TLS handshake timed out", since=mark), server.log_since(mark)
    assert fetch(f"{server.tls_url}/info", client_context(certs)).status_code == 200
