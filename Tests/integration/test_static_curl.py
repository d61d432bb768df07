"""The static-file rules once more, with curl as the client (issue 8 asks for curl)."""
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by Tests/tools/setup.sh")


@pytest.fixture
def server(moonwire, tmp_path):
    www = tmp_path / "www"
    (www / "docs").mkdir(parents=True)
    (www / "docs" / "index.html").write_text("<p>docs</p>")
    (www / "page.html").write_text("<p>" + "curl me " * 400 + "</p>")
    (www / "data.bin").write_bytes(bytes(range(256)) * 16)
    (tmp_path / "secret.txt").write_text("OUTSIDE")
    return moonwire("function OnBeforeCommand(req, res) res:header('Access-Control-Allow-Origin', '*') end", www=www)


def curl(server, *args):
    result = subprocess.run(["curl", "-s", "-i", "--max-time", "10", *args], capture_output=True, timeout=20)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    return head.decode(errors="replace").lower(), body


def test_range_and_if_range(server):
    head, body = curl(server, "-r", "16-31", server.url + "/data.bin")
    assert head.startswith("http/1.1 206") and body == bytes(range(16, 32))
    assert "content-range: bytes 16-31/4096" in head
    head, body = curl(server, "-r", "-4", server.url + "/data.bin")
    assert body == bytes(range(252, 256))
    head, _ = curl(server, "-r", "5000-", server.url + "/data.bin")
    assert head.startswith("http/1.1 416") and "content-range: bytes */4096" in head
    etag = [line for line in curl(server, server.url + "/data.bin")[0].splitlines() if line.startswith("etag:")][0][6:]
    head, _ = curl(server, "-r", "0-1", "-H", f"If-Range: {etag}", server.url + "/data.bin")
    assert head.startswith("http/1.1 206")
    head, _ = curl(server, "-r", "0-1", "-H", 'If-Range: "old"', server.url + "/data.bin")
    assert head.startswith("http/1.1 200")


def test_conditional_requests(server):
    head, _ = curl(server, server.url + "/page.html")
    etag = [line for line in head.splitlines() if line.startswith("etag:")][0][6:]
    assert curl(server, "-H", f"If-None-Match: {etag}", server.url + "/page.html")[0].startswith("http/1.1 304")
    assert curl(server, "-z", "Thu, 01 Jan 2099 00:00:00 GMT", server.url + "/page.html")[0].startswith("http/1.1 304")
    assert curl(server, "-z", "Thu, 01 Jan 1998 00:00:00 GMT", server.url + "/page.html")[0].startswith("http/1.1 200")


def test_gzip_with_curl(server):
    head, body = curl(server, "--compressed", server.url + "/page.html")
    assert "content-encoding: gzip" in head and body.startswith(b"<p>curl me")
    head, _ = curl(server, server.url + "/page.html")
    assert "content-encoding" not in head and "vary: accept-encoding" in head
    head, _ = curl(server, "--compressed", "-r", "0-9", server.url + "/page.html")
    assert head.startswith("http/1.1 206") and "content-encoding" not in head


def test_index_redirect_cors_and_types(server):
    head, _ = curl(server, server.url + "/docs")
    assert head.startswith("http/1.1 301") and "location: /docs/" in head
    head, body = curl(server, server.url + "/docs/")
    assert body == b"<p>docs</p>" and "content-type: text/html; charset=utf-8" in head
    assert "access-control-allow-origin: *" in head


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2E%2E%2Fsecret.txt",
                                  "/docs/..%5c..%5csecret.txt", "/.%2e/secret.txt", "/docs/%2e%2e/%2e%2e/secret.txt"])
def test_traversal_with_curl(server, path):
    head, body = curl(server, "--path-as-is", server.url + path)
    assert b"OUTSIDE" not in body
    assert head[:12] in ("http/1.1 400", "http/1.1 403", "http/1.1 404")
