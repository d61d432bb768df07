"""`moonwire test` and `moonwire new`: the Lua test harness (moonwire.testing) run against a real
app (apps/testing_app, www/), its report (one line per test, file:line, expected and actual,
the server's log, the summary, JUnit XML, the exit status), over HTTP/1.1, h2c and WebSocket, and a new project that passes its
own tests and serves what its README says."""
import re
import time
import xml.etree.ElementTree as ET

import httpx
import websockets.sync.client

from harness import APPS, HERE, WWW, Server, run_cli

FILES = HERE / "testing"


def run_tests(*paths, extra=(), timeout=60):
    return run_cli("test", "--scripts", APPS / "testing_app", "--www", WWW, *extra,
                   *[FILES / p for p in paths], timeout=timeout)


def test_every_feature_passes():
    result = run_tests("pass_test.lua")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ["test_assertions_pass", "test_request_path", "test_http2_when_asked", "test_authentication", "test_virtual_host",
                 "test_static_file", "test_json_post", "test_websocket_round_trip", "test_session_timeout",
                 "test_ttl_follows_the_clock", "test_handler_error_is_a_500",
                 "test_endless_handler_is_stopped", "a case with spaces"]:
        assert any(re.match(rf"ok   \S*pass_test\.lua:\d+ {re.escape(name)} \(", line) for line in lines), result.stdout
    assert lines[-1].startswith("13 passed, 0 failed"), result.stdout


def test_timers_follow_the_test_clock():
    result = run_tests("timers_test.lua")
    assert result.returncode == 0, result.stdout + result.stderr


def test_failures_name_file_line_expected_and_actual():
    result = run_tests("fail_test.lua")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "ok   " in out and "test_passes" in out
    assert out.splitlines()[-1].startswith("1 passed, 8 failed"), out
    # each failure: FAIL line, then file:line of the assertion, expected and actual
    expected = {
        "test_eq_fails": ("fail_test.lua:4: values differ", "expected: {a = 1, b = {3}}", "actual:   {a = 1, b = {2}}"),
        "test_ok_fails": ("fail_test.lua:8: the user exists: expected a true value", "expected: not false or nil", "actual:   nil"),
        "test_match_fails": ("fail_test.lua:12: no match", "expected: text matching /^bye/", 'actual:   "hello"'),
        "test_raises_fails": ("fail_test.lua:16: no error raised", "expected: an error matching /boom/", "actual:   no error"),
        "test_raises_wrong_error": ("fail_test.lua:20: the error does not match", "expected: an error matching /boom/",
                                    "actual:   \"" ),
    }
    for name, parts in expected.items():
        block = failure_block(out, name)
        for part in parts:
            assert part in block, (name, part, block)


def failure_block(out, name):
    match = re.search(rf"^FAIL \S+:\d+ {name} \(.*?\n((?:    .*\n)*)", out, re.M)
    assert match, (name, out)
    return match.group(1)


def test_errors_are_reported_with_tracebacks_and_server_log():
    out = run_tests("fail_test.lua").stdout
    lua_error = failure_block(out, "test_lua_error")
    assert "fail_test.lua:25: attempt to index a nil value" in lua_error and "stack traceback" in lua_error, lua_error
    handler = failure_block(out, "test_handler_error")
    assert "fail_test.lua:29: values differ" in handler and "actual:   500" in handler, handler
    assert "server log:" in handler and "error: a route's handler failed" in handler, handler
    assert "main.lua:40: attempt to index a nil value" in handler and "stack traceback" in handler, handler
    endless = failure_block(out, "test_endless_handler")
    assert "actual:   503" in endless and "exceeded the CPU budget" in endless and "main.lua:43" in endless, endless


def test_endless_test_code_is_stopped_by_the_timeout():
    result = run_tests("endless_test.lua", extra=["--timeout", "1"])
    block = failure_block(result.stdout, "test_endless")
    assert "endless_test.lua:3" in block and "more than 1.0 s" in block, block
    assert re.search(r"^ok   \S+ test_after ", result.stdout, re.M), result.stdout
    assert result.returncode == 1


def test_junit_xml_reads_back(tmp_path):
    report = tmp_path / "junit.xml"
    run_tests("fail_test.lua", "pass_test.lua", extra=["--junit", report])
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "22" and root.get("failures") == "8"
    suites = {suite.get("name").rsplit("/", 1)[-1]: suite for suite in root.iter("testsuite")}
    assert suites["fail_test.lua"].get("failures") == "8" and suites["pass_test.lua"].get("failures") == "0"
    eq = next(case for case in root.iter("testcase") if case.get("name") == "test_eq_fails")
    failure = eq.find("failure")
    assert "fail_test.lua:4: values differ" in failure.get("message")
    assert "actual:   {a = 1, b = {2}}" in failure.text
    handler = next(case for case in root.iter("testcase") if case.get("name") == "test_handler_error")
    assert "traceback" in handler.find("failure").text
    assert all(float(case.get("time")) >= 0 for case in root.iter("testcase"))


def test_filter_runs_only_matching_tests():
    result = run_tests("fail_test.lua", extra=["--filter", "passes"])
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith("1 passed, 0 failed"), result.stdout


def test_files_are_isolated_and_run_in_parallel():
    result = run_tests("isolation_a_test.lua", "isolation_b_test.lua", extra=["--jobs", "2"])
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith("2 passed, 0 failed (2 files"), result.stdout


def test_no_test_files_is_a_failure(tmp_path):
    result = run_cli("test", "--scripts", APPS / "testing_app", tmp_path)
    assert result.returncode == 1 and "no *_test.lua files" in result.stdout


def test_scripts_that_do_not_load_fail_the_file(tmp_path):
    (tmp_path / "main.lua").write_text("local x = nil\nprint(x.field)\n")
    result = run_cli("test", "--scripts", tmp_path, FILES / "isolation_a_test.lua")
    assert result.returncode == 1
    assert "(start)" in result.stdout and "main.lua:2:" in result.stdout, result.stdout


def test_a_thousand_gets(capsys):
    result = run_tests("speed_test.lua")
    assert result.returncode == 0, result.stdout
    milliseconds = float(re.search(r"test_thousand_gets \(([\d.]+) ms\)", result.stdout).group(1))
    with capsys.disabled():
        print(f"\n1,000 t.get: {milliseconds:.0f} ms")
    # 22 to 50 ms with a release build, 1.3 s with a debug one (docs/testing.md#speed).
    assert milliseconds < 10_000


def test_new_project_passes_its_tests_and_serves_its_readme(tmp_path):
    result = run_cli("new", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    demo = tmp_path / "demo"
    for path in ["scripts/main.lua", "www/index.html", "tests/app_test.lua", "README.md"]:
        assert (demo / path).is_file(), path
    readme = (demo / "README.md").read_text()
    assert all(command in readme for command in ["moonwire serve", "moonwire test", "moonwire check"])
    tested = run_cli("test", cwd=demo)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.splitlines()[-1].startswith("5 passed, 0 failed"), tested.stdout
    assert run_cli("check", cwd=demo).returncode == 0
    assert run_cli("new", "demo", cwd=tmp_path).returncode == 1

    server = Server(demo / "scripts", tmp_path / "run", www=demo / "www")
    try:
        assert "<h1>demo</h1>" in server.get("/").text
        assert server.get("/hello/world").text == "Hello, world!\n"
        assert server.get("/api/count").json() == {"count": 0}
        with websockets.sync.client.connect(server.url.replace("http://", "ws://") + "/echo") as ws:
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
    finally:
        server.stop()
