"""Errors the moonwire API raises reach the script with their message and the calling line,
whether they come from a table that was being walked or from a plain argument check."""
import subprocess

import pytest

from conftest import BINARY


@pytest.mark.parametrize("call, message", [
    ('moonwire.options{origins = {"^https://a$", true}}', "origins must be strings"),
    ('moonwire.push_preload("/index.html", {"/a.css", 42})', "links must be paths"),
    ('moonwire.push_preload("index.html", {})', "expected a path starting with /"),
    ('moonwire.listen{port = "http"}', "port must be a number"),
    ('moonwire.listen{port = 8443, tls = {cert = "/nonexistent.pem", key = "/nonexistent.pem"}}', "/nonexistent.pem"),
    ('moonwire.vhost("^a$", {tls = {cert = "/nonexistent.pem", key = "/x"}})', "moonwire.vhost: tls"),
    ('moonwire.options{http2 = {max_frame_size = 100}}', "http2.max_frame_size"),
    ('moonwire.options{http2 = {push = "yes"}}', "http2.push must be true or false"),
])
def test_load_time_errors_name_the_line_and_say_why(tmp_path, call, message):
    (tmp_path / "main.lua").write_text(f"-- first line\n{call}\n")
    result = subprocess.run([BINARY, "check", "--scripts", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "main.lua:2:" in result.stdout and message in result.stdout, result.stdout


def test_handler_errors_from_table_arguments_keep_their_message(moonwire):
    server = moonwire('moonwire.get("/h", function(req, res) res:header("X-List", {"ok", "bad\\r\\nvalue"}) end)',
                      dev=True)
    reply = server.get("/h")
    assert reply.status_code == 500
    assert "res:header: invalid value for X-List" in reply.text
    assert "main.lua:1:" in reply.text
