"""Listeners at run time: OnBeforeBinding editing the list to bind, moonwire.restart() binding
what changed while connections stay open, and the watchdog binding a listener again after its
socket was shut down from outside. Real sockets: httpx, Python's websockets, pidfd_getfd(2)."""
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time

import httpx
import pytest
from websockets.sync.client import connect

from harness import LUA_RECORD, free_port, run_cli, shut_down_listener, wait_until
from tls_certs import client_context, common_name, handshake, start_tls, tls_table
from websocket_client import url

RECORD = LUA_RECORD + r"""
moonwire.get("/", function(req, res) res:send("hello") end)
function OnMessage(ws, text) ws:send("echo " .. text) end
"""


def answers(port, path="/"):
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).text
    except httpx.TransportError:
        return None


def test_on_before_binding_adds_a_port_and_both_answer(moonwire):
    extra = free_port()
    server = moonwire(RECORD + r"""
function OnBeforeBinding(bindings)
  record("bindings.log", #bindings .. " " .. bindings[1].host .. " " .. tostring(bindings[1].tls))
  table.insert(bindings, {host = "127.0.0.1", port = tonumber(os.getenv("EXTRA_PORT"))})
end
""", env={"EXTRA_PORT": str(extra)})
    assert answers(server.port) == "hello"
    assert answers(extra) == "hello"
    assert server.records("bindings.log") == ["1 127.0.0.1 false"]
    assert f"listening on http://127.0.0.1:{extra}" in server.log()


def test_on_before_binding_may_move_a_port_and_return_a_new_list(moonwire, tmp_path):
    moved = free_port()
    server = moonwire(RECORD + r"""
function OnBeforeBinding(bindings)
  moonwire.sleep(0.01)  -- it may wait
  return {{host = bindings[1].host, port = tonumber(os.getenv("MOVED_PORT"))}}
end
""", env={"MOVED_PORT": str(moved)})
    assert answers(moved) == "hello"
    assert answers(server.port) is None


@pytest.mark.parametrize("body, message", [
    ("error('no bindings today')", "no bindings today"),
    ("bindings[1].port = 'eighty'", "bindings[1].port must be a number 0...65535"),
    ("bindings[1].colour = 'red'", "unknown option colour"),
    ("table.insert(bindings, {port = 1, tls = true})", "a new one needs tls = {cert=, key=}"),
])
def test_a_failing_on_before_binding_stops_the_start_with_its_reason(tmp_path, body, message):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "main.lua").write_text(f"function OnBeforeBinding(bindings) {body} end\n")
    result = run_cli("serve", "--scripts", str(scripts), "--port", str(free_port()), timeout=30)
    assert result.returncode == 1
    assert message in result.stderr + result.stdout


def test_on_before_binding_keeps_a_declared_tls_listener_and_adds_one_across_restarts(moonwire, certs):
    added = free_port()
    server = start_tls(moonwire, certs, RECORD + f"""
moonwire.get("/restart", function(req, res) res:send(tostring(moonwire.restart())) end)
function OnBeforeBinding(bindings)
  record("tls.log", tostring(bindings[1].tls) .. " " .. tostring(bindings[2].tls))
  table.insert(bindings, {{host = "127.0.0.1", port = {added}, tls = {tls_table(certs.a_test)}}})
end
""")
    context = client_context(certs)
    for _ in range(2):
        assert common_name(handshake(server.tls_port, context, "localhost")[2]) == "localhost"
        assert common_name(handshake(added, context, "a.test")[2]) == "a.test"
        mark = server.log_mark()
        assert answers(server.port, "/restart") == "true"
        assert server.wait_for_log("restart done", since=mark), server.log()
        # Nothing changed, so nothing was bound again.
        assert "listening on" not in server.log_since(mark)
    assert server.records("tls.log") == ["false true"] * 3


def test_a_restart_goes_on_past_an_address_in_use(moonwire):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy, extra = taken.getsockname()[1], free_port()
        server = moonwire(RECORD + r"""
moonwire.get("/restart", function(req, res) res:send(tostring(moonwire.restart())) end)
function OnBeforeBinding(bindings)
  if moonwire.shared:incr("binds") > 1 then
    table.insert(bindings, {host = "127.0.0.1", port = tonumber(os.getenv("BUSY_PORT"))})
    table.insert(bindings, {host = "127.0.0.1", port = tonumber(os.getenv("EXTRA_PORT"))})
  end
end
""", env={"BUSY_PORT": str(busy), "EXTRA_PORT": str(extra)})
        mark = server.log_mark()
        assert answers(server.port, "/restart") == "true"
        assert server.wait_for_log("restart done", since=mark), server.log()
        assert f"cannot listen on 127.0.0.1:{busy}" in server.log_since(mark)
        assert answers(extra) == "hello"
        assert answers(server.port) == "hello"


def test_restart_adds_and_removes_a_listener_while_a_websocket_stays_open(moonwire):
    extra = free_port()
    # The first plain listener is the one --host/--port replace; the second comes and goes.
    server = moonwire(RECORD + r"""
moonwire.listen{host = "127.0.0.1", port = 1}
require "listeners"
moonwire.get("/restart", function(req, res) res:send(tostring(moonwire.restart())) end)
function OnBeforeBinding(bindings) record("bindings.log", tostring(#bindings)) end
""", files={"listeners.lua": "-- none yet\n"})
    listeners = server.scripts / "listeners.lua"
    with connect(url(server, "/ws")) as ws:
        ws.send("one")
        assert ws.recv(timeout=5) == "echo one"
        mark = server.log_mark()
        listeners.write_text(f'moonwire.listen{{host = "127.0.0.1", port = {extra}}}\n')
        assert answers(server.port, "/restart") == "true"
        assert server.wait_for_log("restart done", since=mark), server.log()
        assert answers(extra) == "hello"
        ws.send("two")
        assert ws.recv(timeout=5) == "echo two"
        # The second listener goes away again; the first and both WebSockets stay, the one
        # the closed listener accepted too.
        with connect(f"ws://127.0.0.1:{extra}/ws") as other:
            mark = server.log_mark()
            listeners.write_text("-- none again\n")
            assert answers(extra, "/restart") == "true"
            assert server.wait_for_log("restart done", since=mark), server.log()
            assert f"stopped listening on http://127.0.0.1:{extra}" in server.log_since(mark)
            assert wait_until(lambda: answers(extra) is None)
            assert answers(server.port) == "hello"
            other.send("still here")
            assert other.recv(timeout=5) == "echo still here"
        ws.send("three")
        assert ws.recv(timeout=5) == "echo three"
    # OnBeforeBinding ran at the start and at each restart, seeing the declared listeners.
    assert server.records("bindings.log") == ["1", "2", "1"]


def test_a_restart_whose_on_before_binding_fails_keeps_the_listeners(moonwire):
    server = moonwire(RECORD + r"""
moonwire.get("/restart", function(req, res) res:send(tostring(moonwire.restart())) end)
function OnBeforeBinding(bindings)
  if moonwire.shared:incr("binds") > 1 then error("not this time") end
end
""")
    mark = server.log_mark()
    assert answers(server.port, "/restart") == "true"
    assert server.wait_for_log("the listeners stay as they are", since=mark), server.log()
    assert "not this time" in server.log_since(mark)
    assert answers(server.port) == "hello"


WATCHDOG = RECORD + r"""
moonwire.options{watchdog = {enabled = os.getenv("WATCHDOG") == "on", interval = 0.2, attempts = 0}}
function OnError(conn, message) record("errors.log", conn.local_port .. " " .. message) end
"""


def test_the_watchdog_binds_a_listener_again_after_its_socket_is_shut_down(moonwire):
    server = moonwire(WATCHDOG, env={"WATCHDOG": "on"})
    with connect(url(server, "/ws")) as ws:
        mark = server.log_mark()
        shut_down_listener(server.process.pid, server.port)
        assert server.wait_for_log("watchdog: listening again", since=mark), server.log()
        assert "listener closed unexpectedly" in server.log_since(mark)
        assert answers(server.port) == "hello"
        ws.send("still")
        assert ws.recv(timeout=5) == "echo still"
    assert server.records("errors.log") == [f"{server.port} listener 127.0.0.1:{server.port} failed"]
    # Once more: the listener bound again is watched too.
    mark = server.log_mark()
    shut_down_listener(server.process.pid, server.port)
    assert server.wait_for_log("watchdog: listening again", since=mark), server.log()
    assert answers(server.port) == "hello"


def test_without_the_watchdog_a_failed_listener_stays_closed_and_says_so(moonwire):
    server = moonwire(WATCHDOG, env={"WATCHDOG": "off"})
    mark = server.log_mark()
    shut_down_listener(server.process.pid, server.port)
    assert server.wait_for_log("the watchdog is off, it stays closed", since=mark), server.log()
    assert answers(server.port) is None
    assert len(server.records("errors.log")) == 1


@pytest.mark.parametrize("option, message", [
    ("{enabled = true, intervall = 5}", "unknown option watchdog.intervall"),
    ("{interval = 0}", "watchdog.interval must be a number of seconds"),
    ("{attempts = -1}", "watchdog.attempts must be a whole number"),
    ("{enabled = 'yes'}", "watchdog.enabled must be true or false"),
])
def test_watchdog_options_are_checked_at_load(tmp_path, option, message):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "main.lua").write_text(f"moonwire.options{{watchdog = {option}}}\n")
    result = run_cli("check", "--scripts", str(scripts))
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def process_ends(pid, timeout):
    """Whether process `pid` (not our child) is gone within `timeout` seconds."""
    return wait_until(lambda: not pathlib.Path(f"/proc/{pid}").exists()
                      or "Z" in pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3], timeout)


@pytest.fixture
def upgraded():
    """Stops, at the end, the processes an upgrade started (they are not the harness's)."""
    pids = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        if not process_ends(pid, 15):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by Tests/tools/setup.sh")
def test_a_binary_upgrade_under_load_fails_no_request(moonwire, upgraded):
    server = moonwire(RECORD + 'moonwire.options{drain_timeout = 10}\n', extra_args=["--pid-file", "moonwire.pid"])
    pid_file = server.workdir / "moonwire.pid"
    assert wait_until(lambda: pid_file.exists())
    old = server.process.pid
    load = subprocess.Popen(["wrk", "-t2", "-c64", "-d4s", "--timeout", "10s", server.url + "/"],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    result = run_cli("upgrade", "--pid-file", pid_file, timeout=40)
    assert result.returncode == 0, result.stdout + result.stderr + server.log()
    new = int(pid_file.read_text())
    upgraded.append(new)
    assert new != old and f"process {new} serves" in result.stdout
    output, _ = load.communicate(timeout=30)
    print(f"wrk across the upgrade:\n{output}")
    assert server.process.wait(timeout=20) == 0, server.log()
    server.returncode = 0
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    assert requests > 1000, output
    assert "Socket errors" not in output, output
    assert "Non-2xx" not in output, output
    # The new process serves on the same port, and logs into the same file.
    assert answers(server.port) == "hello"
    log = server.log()
    assert "upgrade: the new process serves; this one drains" in log
    assert "drained" in log
    assert pid_file.read_text().strip() == str(new)


def test_an_upgrade_whose_new_process_fails_keeps_the_old_one_serving(moonwire, upgraded):
    server = moonwire(RECORD, extra_args=["--pid-file", "moonwire.pid"])
    pid_file = server.workdir / "moonwire.pid"
    assert wait_until(lambda: pid_file.exists())
    # The new process will not load the scripts (the running one keeps its generation).
    (server.scripts / "main.lua").write_text("this is not Lua\n")
    assert server.wait_for_log("reload failed")
    mark = server.log_mark()
    result = run_cli("upgrade", "--pid-file", pid_file, "--timeout", "10", timeout=30)
    assert result.returncode == 1, result.stdout
    assert server.wait_for_log("upgrade failed; this process keeps serving", since=mark), server.log()
    assert "exited with status 1 before it was serving" in server.log_since(mark)
    assert answers(server.port) == "hello"
    assert pid_file.read_text().strip() == str(server.process.pid)
    # A second upgrade, with the scripts fixed, succeeds.
    (server.scripts / "main.lua").write_text(RECORD)
    assert server.wait_for_log("scripts reloaded", since=mark)
    result = run_cli("upgrade", "--pid-file", pid_file, timeout=40)
    assert result.returncode == 0, result.stdout + server.log()
    upgraded.append(int(pid_file.read_text()))
    assert server.process.wait(timeout=20) == 0
    server.returncode = 0
    assert answers(server.port) == "hello"
