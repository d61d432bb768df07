"""Static files going out (docs/http.md, "Static files"): large files in parallel with bounded
memory, a download longer than keepalive_timeout, a client that stops reading closed after
send_timeout, and ranges, validators, gzip, redirects and traversal with curl as the client."""
import hashlib
import re
import shutil
import socket
import subprocess
import threading
import time

import httpx
import pytest

from harness import wait_until


def test_large_files_in_parallel_keep_memory_bounded(moonwire, tmp_path, capsys):
    www = tmp_path / "large"
    www.mkdir()
    digests = {}
    block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
    for n in range(4):
        digest = hashlib.sha256()
        with open(www / f"file{n}.bin", "wb") as out:
            for i in range(300):
                piece = bytes([n, i % 256]) + block[2:]
                out.write(piece)
                digest.update(piece)
        digests[n] = digest.hexdigest()
    server = moonwire("", www=www, threads=2)
    received = {}

    def fetch(n):
        digest = hashlib.sha256()
        with httpx.stream("GET", f"{server.url}/file{n}.bin", timeout=120) as reply:
            for chunk in reply.iter_bytes(1 << 20):
                digest.update(chunk)
        received[n] = digest.hexdigest()

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(f"/proc/{server.process.pid}/status") as status:
        peak_kib = int(re.search(r"VmHWM:\s+(\d+)", status.read()).group(1))
    with capsys.disabled():
        print(f"\n4 x 300 MB in parallel: peak RSS {peak_kib} KiB, digests equal: {received == digests}")
    assert received == digests
    assert peak_kib < 150 * 1024, f"peak RSS {peak_kib} KiB"


# --- large files and clients that read slowly or not at all ----------------------------------

SEND_LIMITS = "moonwire.options{ limits = { keepalive_timeout = 1, send_timeout = 2 } }\n"


def big_file_site(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(bytes(range(256)) * (80 * 1024))     # 20 MiB
    return www


def test_a_download_longer_than_keepalive_timeout_arrives_whole(moonwire, tmp_path):
    # The keep-alive timer started as soon as the file was handed to the socket, so a download
    # that took longer than keepalive_timeout was cut (60 s by default: any large file on a
    # slow link). A client reading about 6 MB/s takes 3 s here, keepalive_timeout is 1 s.
    www = big_file_site(tmp_path)
    server = moonwire(SEND_LIMITS, www=www, threads=1)
    received = bytearray()
    started = time.monotonic()
    expected = (www / "big.bin").read_bytes()
    with server.connect() as sock:
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")      # keep-alive: the timer's case
        while time.monotonic() - started < 30 and len(received) < len(expected) + 1000:
            chunk = sock.recv(64 * 1024)
            if not chunk:
                break
            received += chunk
            if received.find(b"\r\n\r\n") >= 0 and len(received) - received.find(b"\r\n\r\n") - 4 >= len(expected):
                break
            time.sleep(0.01)
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:100]
    assert body == expected, f"{len(body)} of {20 << 20} bytes in {time.monotonic() - started:.1f} s"
    assert time.monotonic() - started > 1.5, "the download was too fast to show anything"


def test_a_client_that_stops_reading_a_download_is_closed_after_send_timeout(moonwire, tmp_path):
    www = big_file_site(tmp_path)
    server = moonwire(SEND_LIMITS.replace("keepalive_timeout = 1", "keepalive_timeout = 30"), www=www, threads=1)
    mark = server.log_mark()
    baseline = server.descriptors()
    with server.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert server.wait_for_log("send timed out", timeout=10, since=mark), server.log_since(mark)[-2000:]
        assert "the client took nothing for 2.0 s" in server.log_since(mark)
        # Another client on the same loop is served meanwhile, and descriptors come back.
        assert server.get("/big.bin").content == (www / "big.bin").read_bytes()
        assert wait_until(lambda: server.descriptors() <= baseline, timeout=5), (baseline, server.descriptors())


# --- curl as the client ---------------------------------------------------------------------

@pytest.fixture
def curl_server(moonwire, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is installed by Tests/tools/setup.sh")
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


def test_range_and_if_range(curl_server):
    head, body = curl(curl_server, "-r", "16-31", curl_server.url + "/data.bin")
    assert head.startswith("http/1.1 206") and body == bytes(range(16, 32))
    assert "content-range: bytes 16-31/4096" in head
    head, body = curl(curl_server, "-r", "-4", curl_server.url + "/data.bin")
    assert body == bytes(range(252, 256))
    head, _ = curl(curl_server, "-r", "5000-", curl_server.url + "/data.bin")
    assert head.startswith("http/1.1 416") and "content-range: bytes */4096" in head
    etag = [line for line in curl(curl_server, curl_server.url + "/data.bin")[0].splitlines() if line.startswith("etag:")][0][6:]
    head, _ = curl(curl_server, "-r", "0-1", "-H", f"If-Range: {etag}", curl_server.url + "/data.bin")
    assert head.startswith("http/1.1 206")
    head, _ = curl(curl_server, "-r", "0-1", "-H", 'If-Range: "old"', curl_server.url + "/data.bin")
    assert head.startswith("http/1.1 200")


def test_conditional_requests(curl_server):
    head, _ = curl(curl_server, curl_server.url + "/page.html")
    etag = [line for line in head.splitlines() if line.startswith("etag:")][0][6:]
    assert curl(curl_server, "-H", f"If-None-Match: {etag}", curl_server.url + "/page.html")[0].startswith("http/1.1 304")
    assert curl(curl_server, "-z", "Thu, 01 Jan 2099 00:00:00 GMT", curl_server.url + "/page.html")[0].startswith("http/1.1 304")
    assert curl(curl_server, "-z", "Thu, 01 Jan 1998 00:00:00 GMT", curl_server.url + "/page.html")[0].startswith("http/1.1 200")


def test_gzip_with_curl(curl_server):
    head, body = curl(curl_server, "--compressed", curl_server.url + "/page.html")
    assert "content-encoding: gzip" in head and body.startswith(b"<p>curl me")
    head, _ = curl(curl_server, curl_server.url + "/page.html")
    assert "content-encoding" not in head and "vary: accept-encoding" in head
    head, _ = curl(curl_server, "--compressed", "-r", "0-9", curl_server.url + "/page.html")
    assert head.startswith("http/1.1 206") and "content-encoding" not in head


def test_index_redirect_cors_and_types(curl_server):
    head, _ = curl(curl_server, curl_server.url + "/docs")
    assert head.startswith("http/1.1 301") and "location: /docs/" in head
    head, body = curl(curl_server, curl_server.url + "/docs/")
    assert body == b"<p>docs</p>" and "content-type: text/html; charset=utf-8" in head
    assert "access-control-allow-origin: *" in head


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2E%2E%2Fsecret.txt",
                                  "/docs/..%5c..%5csecret.txt", "/.%2e/secret.txt", "/docs/%2e%2e/%2e%2e/secret.txt"])
def test_traversal_with_curl(curl_server, path):
    head, body = curl(curl_server, "--path-as-is", curl_server.url + path)
    assert b"OUTSIDE" not in body
    assert head[:12] in ("http/1.1 400", "http/1.1 403", "http/1.1 404")
