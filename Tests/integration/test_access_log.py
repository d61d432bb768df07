"""The access log (moonwire.options{access_log = {path =, format =}}): a line per answer on
HTTP/1.1 and HTTP/2 and per WebSocket upgrade, in the combined format or as JSON, to a file or
standard output, reopened on SIGUSR1 after a rotation. Real clients: httpx (HTTP/1.1 and h2c),
Python's websockets."""
import json
import re
import signal

import httpx
import pytest
from websockets.sync.client import connect

from harness import run_cli, wait_until
from http2_client import Target
from websocket_client import url

APP = r"""
moonwire.options{ access_log = { path = os.getenv("ACCESS_LOG"), format = os.getenv("ACCESS_FORMAT") } }
moonwire.get("/hello", function(req, res) res:send("hello") end)
moonwire.get("/stream", function(req, res) res:write("a") res:write("bc") res:finish() end)
function OnConnect(ws) end
"""

COMBINED = re.compile(r'^(\S+) - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "(.*)" (\d{3}) (\d+|-) "(.*)" "(.*)"$')


def lines_of(path, count, timeout=5.0):
    """The first `count` lines of the file, waiting for them (lines are written in batches)."""
    assert wait_until(lambda: path.exists() and len(path.read_text().splitlines()) >= count, timeout=timeout), (
        path.read_text() if path.exists() else "no file")
    return path.read_text().splitlines()


def test_combined_lines_for_http1_http2_and_websocket(moonwire, tmp_path):
    log = tmp_path / "access.log"
    server = moonwire(APP, env={"ACCESS_LOG": str(log), "ACCESS_FORMAT": "combined"})
    reply = httpx.get(server.url + "/hello?x=1", headers={"Referer": "http://example.com/", "User-Agent": "test-agent"})
    assert reply.text == "hello"
    assert lines_of(log, 1)
    with Target(False, server.port, None).httpx() as client:
        assert client.get(server.url + "/hello").http_version == "HTTP/2"
    assert lines_of(log, 2)
    with connect(url(server, "/ws")):
        pass
    assert lines_of(log, 3)
    assert httpx.get(server.url + "/missing").status_code == 404
    assert httpx.get(server.url + "/stream").text == "abc"
    lines = lines_of(log, 5)
    fields = [COMBINED.match(line) for line in lines]
    assert all(fields), lines
    assert [f.group(3, 4, 5) for f in fields] == [
        ("GET /hello?x=1 HTTP/1.1", "200", "5"),
        ("GET /hello HTTP/2.0", "200", "5"),
        ("GET /ws HTTP/1.1", "101", "-"),
        ("GET /missing HTTP/1.1", "404", fields[3].group(5)),
        ("GET /stream HTTP/1.1", "200", "-"),
    ]
    assert fields[0].group(1, 6, 7) == ("127.0.0.1", "http://example.com/", "test-agent")
    assert fields[1].group(6) == "-"


def test_json_lines_to_standard_output(moonwire):
    server = moonwire(APP, env={"ACCESS_LOG": "-", "ACCESS_FORMAT": "json"})
    assert httpx.get(server.url + "/hello", headers={"User-Agent": 'say "hi"\\'}).text == "hello"

    def entries():
        return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert wait_until(lambda: len(entries()) == 1), server.log()
    entry = entries()[0]
    assert (entry["method"], entry["target"], entry["protocol"], entry["status"], entry["bytes"]) == (
        "GET", "/hello", "HTTP/1.1", 200, 5)
    assert entry["remote"] == "127.0.0.1" and entry["user_agent"] == 'say "hi"\\' and entry["referer"] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["time"])
    assert 0 <= entry["duration_ms"] < 5000


def test_a_client_cannot_forge_a_line(moonwire, tmp_path):
    log = tmp_path / "access.log"
    server = moonwire(APP, env={"ACCESS_LOG": str(log), "ACCESS_FORMAT": "combined"})
    assert httpx.get(server.url + "/hello", headers={"User-Agent": 'x" 200\t5 "y'}).text == "hello"
    line = lines_of(log, 1)[0]
    assert line.endswith(r'"x\" 200\x095 \"y"'), line


def test_sigusr1_reopens_the_file_after_a_rotation(moonwire, tmp_path):
    log = tmp_path / "access.log"
    server = moonwire(APP, env={"ACCESS_LOG": str(log), "ACCESS_FORMAT": "combined"})
    httpx.get(server.url + "/hello?before")
    assert len(lines_of(log, 1)) == 1
    rotated = tmp_path / "access.log.1"
    log.rename(rotated)
    mark = server.log_mark()
    server.process.send_signal(signal.SIGUSR1)
    assert server.wait_for_log("access log reopened", since=mark), server.log()
    httpx.get(server.url + "/hello?after")
    assert "/hello?after" in lines_of(log, 1)[0]
    assert "/hello?before" in rotated.read_text() and "/hello?after" not in rotated.read_text()


def test_the_last_lines_are_written_at_stop(moonwire, tmp_path):
    log = tmp_path / "access.log"
    server = moonwire(APP, env={"ACCESS_LOG": str(log), "ACCESS_FORMAT": "combined"})
    for number in range(20):
        httpx.get(f"{server.url}/hello?{number}")
    assert server.stop() == 0
    assert len(log.read_text().splitlines()) == 20


@pytest.mark.parametrize("options, message", [
    ('{ path = "x.log", format = "xml" }', 'access_log.format must be "combined" or "json"'),
    ('{ format = "json" }', "access_log.path must be a file's path"),
    ('{ path = "x.log", rotate = true }', "unknown option access_log.rotate"),
])
def test_bad_access_log_options_fail_the_check(tmp_path, options, message):
    (tmp_path / "main.lua").write_text(f"moonwire.options{{ access_log = {options} }}\n")
    checked = run_cli("check", "--scripts", tmp_path)
    assert checked.returncode == 1
    assert message in checked.stdout + checked.stderr


def test_an_access_log_that_cannot_be_opened_stops_the_start(tmp_path):
    (tmp_path / "main.lua").write_text(f'moonwire.options{{ access_log = {{ path = "{tmp_path}/no/such/dir/a.log" }} }}\n')
    serve = run_cli("serve", "--port", "0", "--scripts", tmp_path, "--www", tmp_path)
    assert serve.returncode == 1
    assert f"cannot open the access log {tmp_path}/no/such/dir/a.log" in serve.stderr
