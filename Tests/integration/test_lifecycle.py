"""The graceful stop: SIGTERM (or SIGINT, or moonwire.stop()) closes the listeners, lets the
requests under way finish within moonwire.options{drain_timeout}, sends HTTP/2 GOAWAY, closes
WebSockets with 1001, runs OnShutdown and exits 0; a second signal cuts the drain short.
Real clients over real sockets: wrk, httpx, the h2 library, Python's websockets."""
import re
import shutil
import signal
import subprocess
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from harness import LUA_RECORD, STOP_TIMEOUT, run_cli, wait_until
from http2_client import ACK, DATA, END_STREAM, GOAWAY, HEADERS, PING, RawH2, Target, frame
from websocket_client import url

APP = LUA_RECORD + r"""
moonwire.options{ drain_timeout = tonumber(os.getenv("DRAIN_TIMEOUT") or "30") }

function OnShutdown() record("lifecycle.log", "shutdown") end
function OnConnect(ws) record("ws.log", "open") end
function OnDisconnect(ws, code, reason) record("ws.log", "closed " .. code) end

moonwire.get("/", function(req, res) res:send("hello") end)
moonwire.get("/slow", function(req, res)
  record("slow.log", "started")
  moonwire.sleep(tonumber(req.query.seconds))
  res:send("slept " .. req.query.seconds)
end)
moonwire.get("/stop", function(req, res)
  local first = moonwire.stop()
  moonwire.stop()   -- a stop already begun: this one must not cut the drain as a second signal does
  res:send(tostring(first))
end)
"""


def slow_request(server, seconds, into, client=None):
    """GET /slow?seconds=N in a thread; `into` gets the text, or the exception."""
    def run():
        try:
            with (client or httpx.Client(timeout=60)) as c:
                into["text"] = c.get(f"{server.url}/slow?seconds={seconds}").text
        except Exception as error:  # the drain cut it: recorded for the test to check
            into["error"] = error
    thread = threading.Thread(target=run)
    thread.start()
    assert wait_until(lambda: len(server.records("slow.log")) >= 1, timeout=10), server.log()
    return thread


def exit_code(server, timeout=STOP_TIMEOUT):
    server.returncode = server.process.wait(timeout=timeout)
    return server.returncode


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by Tests/tools/setup.sh")
def test_sigterm_under_load_finishes_requests_and_closes_websockets_with_1001(moonwire):
    server = moonwire(APP, threads=2)
    websocket = connect(url(server))
    assert wait_until(lambda: server.records("ws.log") == ["open"])
    # wrk's run ends while the drain still waits for the slow request. Its connections, busy,
    # are served until then (a connection closes once idle): no answer says `Connection:
    # close`, which would send wrk to reconnect to the closed listener, and none is cut.
    load = subprocess.Popen(["wrk", "-t1", "-c16", "-d3s", "--timeout", "10s", server.url + "/"],
                            stdout=subprocess.PIPE, text=True)
    result = {}
    slow = slow_request(server, 4, result)
    time.sleep(1.0)
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    with pytest.raises(ConnectionClosed) as closed:
        websocket.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    websocket.close()

    output, _ = load.communicate(timeout=30)
    print(f"wrk across SIGTERM:\n{output}")
    slow.join(timeout=30)
    assert result.get("text") == "slept 4", result
    assert exit_code(server) == 0, server.log()
    assert time.monotonic() - stopped_at < 8
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    assert requests > 100, output
    assert "Non-2xx" not in output, output
    # No answer was cut, lost or refused: wrk counts no socket error at all.
    assert "Socket errors" not in output, output
    assert server.records("ws.log") == ["open", "closed 1001"]
    assert server.records("lifecycle.log") == ["shutdown"]
    assert "drained" in server.log()


def test_http2_client_sees_goaway_and_its_stream_finishes(moonwire):
    # Frame by frame: the h2 library takes a GOAWAY for the end of the connection and refuses
    # the frames of the streams the server still finishes.
    server = moonwire(APP)
    with RawH2(Target(False, server.port, None)) as client:
        client.send(client.get(1, "/slow?seconds=1"))
        assert wait_until(lambda: len(server.records("slow.log")) == 1, timeout=10)
        server.process.send_signal(signal.SIGTERM)
        assert client.wait(lambda: any(not flags & ACK for _, flags, _ in client.of_type(PING)), timeout=5)
        first = client.of_type(GOAWAY)[0][2]
        assert int.from_bytes(first[:4], "big") == 0x7FFFFFFF and int.from_bytes(first[4:8], "big") == 0
        # The client answers the PING that follows the first GOAWAY; the second names the last
        # stream the server will answer.
        ping = next(payload for _, flags, payload in client.of_type(PING) if not flags & ACK)
        client.send(frame(PING, ACK, 0, ping))
        assert client.wait(lambda: len(client.of_type(GOAWAY)) == 2, timeout=5), (client.frames, client.closed)
        second = client.of_type(GOAWAY)[1][2]
        assert int.from_bytes(second[:4], "big") == 1 and int.from_bytes(second[4:8], "big") == 0
        # Stream 1 still gets its whole answer, then the server closes the connection.
        assert client.wait(lambda: client.closed, timeout=5)
        body = b"".join(payload for stream, _, payload in client.of_type(DATA) if stream == 1)
        assert 1 in client.answered() and body == b"slept 1"
        assert any(stream == 1 and flags & END_STREAM for stream, flags, _ in client.of_type(DATA) + client.of_type(HEADERS))
    assert exit_code(server) == 0, server.log()
    assert "drained" in server.log()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by Tests/tools/setup.sh")
def test_curl_over_http2_gets_its_answer_during_the_stop(moonwire):
    server = moonwire(APP)
    curl = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge", "-w", " %{http_version} %{http_code}",
                             server.url + "/slow?seconds=1"], stdout=subprocess.PIPE, text=True)
    assert wait_until(lambda: len(server.records("slow.log")) == 1, timeout=10)
    server.process.send_signal(signal.SIGTERM)
    output, _ = curl.communicate(timeout=20)
    assert (curl.returncode, output) == (0, "slept 1 2 200")
    assert exit_code(server) == 0, server.log()


def test_drain_timeout_cuts_a_longer_request(moonwire):
    server = moonwire(APP, env={"DRAIN_TIMEOUT": "1"})
    result = {}
    slow = slow_request(server, 20, result)
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert exit_code(server) == 0, server.log()
    took = time.monotonic() - stopped_at
    slow.join(timeout=10)
    assert 0.9 < took < 5, took
    assert "text" not in result and isinstance(result["error"], httpx.TransportError), result
    assert "drain timeout" in server.log()
    assert server.records("lifecycle.log") == ["shutdown"]


def test_a_second_sigterm_stops_at_once(moonwire):
    server = moonwire(APP)
    result = {}
    slow = slow_request(server, 20, result)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert server.process.poll() is None, "the first SIGTERM must wait for the request"
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert exit_code(server) == 0, server.log()
    assert time.monotonic() - stopped_at < 3
    slow.join(timeout=10)
    assert "error" in result, result
    assert "stop requested again" in server.log()


def test_idle_keepalive_connections_do_not_hold_the_stop(moonwire):
    server = moonwire(APP)
    with httpx.Client(timeout=5) as client:
        assert client.get(server.url + "/").text == "hello"   # the connection stays open, idle
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert exit_code(server) == 0, server.log()
        assert time.monotonic() - stopped_at < 3


def test_moonwire_stop_stops_gracefully(moonwire):
    server = moonwire(APP)
    result = {}
    slow = slow_request(server, 1, result)
    reply = httpx.get(server.url + "/stop", timeout=5)
    assert reply.text == "true"
    slow.join(timeout=10)
    assert result.get("text") == "slept 1", result
    assert exit_code(server) == 0, server.log()
    assert server.records("lifecycle.log") == ["shutdown"]
    assert "stop requested again" not in server.log()


def test_new_connections_are_refused_during_the_drain(moonwire):
    server = moonwire(APP)
    result = {}
    slow = slow_request(server, 2, result)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/", timeout=2)
    slow.join(timeout=10)
    assert result.get("text") == "slept 2", result
    assert exit_code(server) == 0, server.log()


@pytest.mark.parametrize("value", ["-1", "'soon'"])
def test_drain_timeout_must_be_seconds(tmp_path, value):
    (tmp_path / "main.lua").write_text(f"moonwire.options{{ drain_timeout = {value} }}\n")
    checked = run_cli("check", "--scripts", tmp_path)
    assert checked.returncode != 0
    assert "drain_timeout must be a number of seconds" in checked.stdout + checked.stderr
