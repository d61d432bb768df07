"""The command line: `moonwire version`; `moonwire check`, which compiles every .lua file and
prints each error as file:line; `moonwire serve` refusing scripts that do not load, its
listening line, and a clean stop on SIGTERM and SIGINT; a bind failure naming its address,
the warning for a missing www folder, and --log-level."""
import re
import signal
import socket

import pytest

from harness import APPS, free_port, run_cli


def output(result):
    return result.stdout + result.stderr


@pytest.mark.parametrize("flag", ["version", "--version"])
def test_version_prints_name_and_version(flag):
    result = run_cli(flag)
    assert result.returncode == 0, output(result)
    assert re.fullmatch(r"moonwire \S+\n?", result.stdout), repr(result.stdout)


def test_check_good_app_prints_ok_and_exits_0():
    result = run_cli("check", "--scripts", APPS / "check_good")
    assert result.returncode == 0, output(result)
    assert result.stdout.strip().splitlines()[-1] == "ok", repr(result.stdout)


@pytest.mark.parametrize("app, location", [
    ("check_syntax", "main.lua:4:"),                   # syntax error in main.lua
    ("check_module_syntax", "lib/broken.lua:3:"),      # syntax error in a required module
    ("check_module_runtime", "lib/failing.lua:4:"),    # runtime error in a required module
    ("sleep_toplevel", "main.lua:2:"),                 # moonwire.sleep outside a handler
    ("check_unrequired", "extra/orphan.lua:3:"),       # a file nobody requires is compiled too
])
def test_check_reports_file_and_line_and_exits_1(app, location):
    result = run_cli("check", "--scripts", APPS / app)
    assert result.returncode == 1, output(result)
    # each error is printed as `path/to/file.lua:LINE: message`
    pattern = r"(^|[\s/])" + re.escape(location) + r" \S"
    assert re.search(pattern, output(result), re.M), output(result)
    # on stdout, under the name of the scripts folder
    assert f"{app}/{location}" in result.stdout, output(result)
    assert "ok" not in result.stdout.split()


def test_check_reports_every_error():
    result = run_cli("check", "--scripts", APPS / "check_two_errors")
    assert result.returncode == 1, output(result)
    assert re.search(r"(^|[\s/])main\.lua:2: \S", output(result), re.M), output(result)
    assert re.search(r"(^|[\s/])lib/other\.lua:1: \S", output(result), re.M), output(result)


def test_check_reports_runtime_errors_at_top_level(tmp_path):
    (tmp_path / "main.lua").write_text("local x = nil\nprint(x.field)\n")
    result = run_cli("check", "--scripts", str(tmp_path))
    assert result.returncode == 1 and "main.lua:2:" in result.stdout


@pytest.mark.parametrize("app, location", [
    ("check_syntax", "main.lua:4:"),
    ("check_module_syntax", "lib/broken.lua:3:"),
    ("check_module_runtime", "lib/failing.lua:4:"),
    ("sleep_toplevel", "main.lua:2:"),
])
def test_serve_refuses_scripts_that_do_not_load(app, location, tmp_path):
    result = run_cli("serve", "--host", "127.0.0.1", "--port", free_port(),
                     "--scripts", APPS / app, "--www", tmp_path, "--threads", "2")
    assert result.returncode == 1, output(result)
    assert location in result.stderr, result.stderr


def test_serve_logs_listening_line(moonwire):
    server = moonwire(app="check_good")
    expected = f"listening on http://127.0.0.1:{server.port}"
    assert server.wait_for_log(expected), server.log()
    reply = server.get("/?name=moon")
    assert reply.status_code == 200 and reply.text == "hello moon"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_exit_0(moonwire, sig):
    server = moonwire(app="events")
    assert server.wait_for_records("lifecycle.log", 1) == ["startup"]
    assert server.stop(sig) == 0, server.log()
    assert server.records("lifecycle.log") == ["startup", "shutdown"]


def test_unknown_option_keys_fail_the_check_at_their_line(tmp_path):
    (tmp_path / "main.lua").write_text("-- settings\nmoonwire.options{ limits = { memroy = 1 } }\n")
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode == 1, output(result)
    assert "main.lua:2: moonwire.options: unknown option limits.memroy" in result.stdout, output(result)
    (tmp_path / "main.lua").write_text("moonwire.listen{ port = 8080, backlog = 10000 }\nmoonwire.listen{ port = 1, bind = 'x' }\n")
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode == 1 and "main.lua:2: moonwire.listen: unknown option bind" in result.stdout, output(result)


def test_a_bind_failure_names_the_address(tmp_path):
    (tmp_path / "main.lua").write_text("")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", port, "--scripts", tmp_path, "--www", tmp_path)
    assert result.returncode == 1, output(result)
    assert f"cannot listen on 127.0.0.1:{port}:" in result.stderr, result.stderr


def test_a_missing_www_folder_is_a_warning(moonwire, tmp_path):
    server = moonwire(main="", www=tmp_path / "no-such-folder")
    assert "the www folder does not exist" in server.log()
    assert f"{tmp_path / 'no-such-folder'}" in server.log()
    assert server.get("/").status_code == 404


def test_log_level_sets_the_least_level_logged(moonwire):
    main = 'moonwire.get("/", function(req, res) moonwire.log.debug("a debug line") res:send("ok") end)'
    quiet = moonwire(main=main)
    verbose = moonwire(main=main, extra_args=["--log-level", "debug"])
    for server in (quiet, verbose):
        assert server.get("/").text == "ok"
    assert verbose.wait_for_log("a debug line")
    assert "a debug line" not in quiet.log()


def test_log_level_must_be_a_level(tmp_path):
    result = run_cli("serve", "--log-level", "loud", "--scripts", tmp_path)
    assert result.returncode != 0
    assert "--log-level must be one of trace, debug, info" in output(result)
