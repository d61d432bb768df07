"""Request bodies: req.form (urlencoded and multipart), multipart uploads streamed to disk with
the four OnHTTPUpload* events, their limits and clean-up, over HTTP/1.1 (curl -F, httpx, raw
sockets) and HTTP/2 (curl --http2-prior-knowledge); a 256 MiB upload with the server's RSS
bounded. The app is apps/uploads: each event notes itself on req.events and the handler
answers with req.form, req.files and those notes."""
import hashlib
import json
import os
import pathlib
import socket
import subprocess
import threading
import time

import httpx
import pytest

from harness import read_until_close, wait_until

BOUNDARY = "mwTestBoundary7d1"


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(app="uploads")


def uploads_dir(server):
    return pathlib.Path(server.workdir) / "uploads"


def leftovers(server):
    """Files left in the upload folder (the requests have all ended)."""
    folder = uploads_dir(server)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def curl(*args):
    done = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def part(name, value=None, filename=None, content=b"", content_type=None):
    """One multipart part, as bytes (filename may hold any byte)."""
    disposition = b'form-data; name="' + name.encode() + b'"'
    if filename is not None:
        disposition += b'; filename="' + (filename if isinstance(filename, bytes) else filename.encode()) + b'"'
    head = b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n"
    if content_type:
        head += b"Content-Type: " + content_type.encode() + b"\r\n"
    body = value.encode() if value is not None else content
    return head + b"\r\n" + body + b"\r\n"


def multipart(*parts):
    return b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


def post_multipart(server, path, body, headers=None):
    merged = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    merged.update(headers or {})
    return server.request("POST", path, headers=merged, content=body)


def wait_clean(server):
    assert wait_until(lambda: leftovers(server) == [], timeout=5), leftovers(server)


# --- fields and files ------------------------------------------------------------------------

def test_fields_and_files_with_curl_fire_every_event_in_order(server, tmp_path):
    note = tmp_path / "note.txt"
    note.write_bytes(b"hello upload\n")
    answer = json.loads(curl("-F", "a=1", "-F", "a=2", "-F", "title=Hi there",
                             "-F", f"doc=@{note};type=text/plain", f"{server.url}/upload"))
    assert answer["form"] == {"a": ["1", "2"], "title": "Hi there"}
    [saved] = answer["files"]
    assert saved["field"] == "doc" and saved["filename"] == "note.txt"
    assert saved["size"] == 13 and saved["content"] == "hello upload\n"
    assert saved["content_type"] == "text/plain"
    folder = str(uploads_dir(server).resolve())
    assert saved["path"].startswith(folder + "/") and saved["path"].endswith("-note.txt")
    assert answer["events"] == [
        "create|/upload", "input|a|1", "input|a|2", "input|title|Hi there",
        "before|doc|note.txt", f"after|doc|{saved['path']}|13"]
    wait_clean(server)


def test_several_files_with_httpx(server):
    files = [("one", ("a.bin", b"\x00\r\n\r\n--" * 1000, "application/octet-stream")),
             ("two", ("b.txt", b"second", "text/plain")), ("two", ("c.txt", b"", "text/plain"))]
    response = server.request("POST", "/upload", data={"k": "v"}, files=files)
    assert response.status_code == 200
    answer = response.json()
    assert answer["form"] == {"k": "v"}
    assert [(f["field"], f["filename"], f["size"]) for f in answer["files"]] == [
        ("one", "a.bin", 7000), ("two", "b.txt", 6), ("two", "c.txt", 0)]
    assert answer["files"][1]["content"] == "second"
    wait_clean(server)


def test_a_file_skipped_by_false_is_not_written(server):
    body = multipart(part("skip", filename="no.txt", content=b"x" * 5000),
                     part("doc", filename="yes.txt", content=b"kept"))
    answer = post_multipart(server, "/upload", body).json()
    assert [f["filename"] for f in answer["files"]] == ["yes.txt"]
    assert [e.split("|")[0] for e in answer["events"]] == ["create", "before", "before", "after"]
    wait_clean(server)


def test_a_custom_path_inside_the_folder(server):
    answer = post_multipart(server, "/upload", multipart(part("custom", filename="mine.txt", content=b"c"))).json()
    [saved] = answer["files"]
    assert saved["path"] == str(uploads_dir(server).resolve() / "custom" / "mine.txt")
    assert saved["content"] == "c"
    wait_clean(server)


def test_a_custom_path_outside_the_folder_is_refused(server):
    response = post_multipart(server, "/upload", multipart(part("escape", filename="x.txt", content=b"c")))
    assert response.status_code == 500
    assert not (pathlib.Path(server.workdir) / "outside.txt").exists()
    assert "outside the upload folder" in server.log()


@pytest.mark.parametrize("refusal", ["yes", "error"])
def test_a_refused_upload_is_403_and_runs_no_handler(server, refusal):
    response = post_multipart(server, "/upload", multipart(part("doc", filename="a.txt", content=b"a")),
                              headers={"x-refuse": refusal})
    assert response.status_code == 403
    wait_clean(server)
    server.assert_alive()


@pytest.mark.parametrize("client_name, expected", [
    (b"../../etc/evil.txt", "evil.txt"), (b"/etc/passwd", "passwd"), (b"..", "file"),
    (b"a\x00b.txt", "ab.txt"), (b"CON.txt", "_CON.txt"), (b"..\\..\\win.ini", "win.ini"), (b".hidden", "hidden")])
def test_client_file_names_never_escape_the_folder(server, client_name, expected):
    answer = post_multipart(server, "/upload", multipart(part("doc", filename=client_name, content=b"z"))).json()
    [saved] = answer["files"]
    folder = str(uploads_dir(server).resolve())
    assert os.path.dirname(saved["path"]) == folder
    assert saved["path"].split("/")[-1].split("-", 1)[1] == expected
    wait_clean(server)


def test_urlencoded_form(server):
    response = server.request("POST", "/upload", content=b"a=1&a=2&b=x+y%21&flag",
                              headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.json()["form"] == {"a": ["1", "2"], "b": "x y!", "flag": True}
    assert not response.json()["files"]  # an empty table: {} in JSON


# --- bad bodies and limits -------------------------------------------------------------------

def test_a_body_without_a_boundary_is_400(server):
    response = server.request("POST", "/upload", content=b"--x\r\n\r\n",
                              headers={"content-type": "multipart/form-data"})
    assert response.status_code == 400


def test_a_malformed_body_is_400_and_leaves_no_file(server):
    body = part("doc", filename="a.txt", content=b"abc")  # no closing delimiter
    assert post_multipart(server, "/upload", body).status_code == 400
    wait_clean(server)


def test_a_client_that_leaves_mid_file_leaves_no_partial_file(server):
    head = (f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {100 * 1024 * 1024}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + b"--" + BOUNDARY.encode()
                     + b'\r\nContent-Disposition: form-data; name="doc"; filename="cut.bin"\r\n\r\n')
        for _ in range(64):
            sock.sendall(b"y" * 65536)
        assert wait_until(lambda: leftovers(server) != [], timeout=5), "the file was never started"
    wait_clean(server)
    server.assert_alive()


@pytest.mark.parametrize("parts, message", [
    ([part("f", filename=f"{i}.txt", content=b"1") for i in range(5)], "more than 4 files"),
    ([part(f"k{i}", value="v") for i in range(9)], "more than 8 form fields"),
    ([part("big", value="v" * 70000)], "form fields exceed"),
])
def test_upload_limits_answer_413_with_a_log_line(server, parts, message):
    mark = server.log_mark()
    assert post_multipart(server, "/upload", multipart(*parts)).status_code == 413
    assert server.wait_for_log(message, since=mark)
    wait_clean(server)


def test_a_file_over_max_file_size_is_413(moonwire):
    small = moonwire(main='moonwire.options{uploads = {max_file_size = 1000}}\n'
                         'moonwire.post("/u", function(req, res) res:send("handled") end)')
    response = post_multipart(small, "/u", multipart(part("f", filename="a", content=b"x" * 1001)))
    assert response.status_code == 413
    assert "a file exceeds 1000 bytes" in small.log()
    assert wait_until(lambda: not any((pathlib.Path(small.workdir) / "uploads").glob("*")), timeout=5)


def test_unknown_upload_options_are_load_errors(moonwire, tmp_path):
    from harness import run_cli
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "main.lua").write_text('moonwire.options{uploads = {max_file_sise = 1}}\n')
    done = run_cli("check", "--scripts", str(scripts))
    assert done.returncode == 1 and "uploads.max_file_sise" in done.stdout + done.stderr


# --- HTTP/2 ----------------------------------------------------------------------------------

def test_upload_over_http2(server, tmp_path):
    data = tmp_path / "h2.bin"
    data.write_bytes(os.urandom(3 * 1024 * 1024))
    out = curl("--http2-prior-knowledge", "-w", "\n%{http_version}", "-F", "x=y",
               "-F", f"doc=@{data}", f"{server.url}/keep")
    body, version = out.rsplit(b"\n", 1)
    assert version == b"2"
    kept = pathlib.Path(server.workdir) / json.loads(body)["kept"]
    assert hashlib.sha256(kept.read_bytes()).digest() == hashlib.sha256(data.read_bytes()).digest()
    kept.unlink()
    wait_clean(server)


# --- a large upload --------------------------------------------------------------------------

def test_a_256_mib_upload_streams_to_disk_with_bounded_memory(server):
    size = int(os.environ.get("MOONWIRE_UPLOAD_MIB", "256")) * 1024 * 1024
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)

    def body():
        yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"big.bin\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        for _ in range(size // len(block)):
            yield block
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    peak = [server.rss_mib()]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_mib())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        response = httpx.post(server.url + "/keep", content=body(), timeout=120,
                              headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 200, response.text
    kept = pathlib.Path(server.workdir) / response.json()["kept"]
    try:
        assert kept.stat().st_size == size
        on_disk = hashlib.sha256()
        with open(kept, "rb") as f:
            while chunk := f.read(1 << 20):
                on_disk.update(chunk)
        assert on_disk.digest() == digest.digest()
    finally:
        kept.unlink()
    assert peak[0] < 64, f"RSS reached {peak[0]:.1f} MiB"


# --- streamed bodies: req:read ---------------------------------------------------------------

STREAM_APP = r"""
moonwire.options{ limits = { max_body_size = 64 * 1024 * 1024 } }
moonwire.post("/read", function(req, res)
  local total, chunks, biggest = 0, 0, 0
  local digest = {}
  local pause = tonumber(req:header("x-pause") or "0")
  local size = tonumber(req:header("x-chunk") or "65536")
  moonwire.sleep(tonumber(req:header("x-delay") or "0"))
  while true do
    local chunk, err = req:read(size)
    if err then return res:send(err) end
    if not chunk then break end
    total, chunks = total + #chunk, chunks + 1
    if #chunk > biggest then biggest = #chunk end
    if total <= 4096 then digest[#digest + 1] = chunk end
    if pause > 0 then moonwire.sleep(pause) end
  end
  res:json{ total = total, chunks = chunks, biggest = biggest, head = table.concat(digest):sub(1, 16) }
end, {stream_body = true})
moonwire.post("/whole", function(req, res) res:send(req:read()) end)
moonwire.get("/alive", function(req, res) res:send("alive") end)
"""


@pytest.fixture(scope="module")
def streaming(moonwire_module):
    return moonwire_module(main=STREAM_APP)


def test_req_read_gives_the_body_chunk_by_chunk(streaming):
    body = b"0123456789abcdef" * 65536  # 1 MiB
    answer = streaming.request("POST", "/read", content=body, headers={"x-chunk": "1000"}).json()
    assert answer["total"] == len(body) and answer["biggest"] <= 1000 and answer["head"] == "0123456789abcdef"


def test_req_read_over_http2(streaming, tmp_path):
    data = tmp_path / "body.bin"
    data.write_bytes(b"h2" * 600000)
    out = curl("--http2-prior-knowledge", "--data-binary", f"@{data}", f"{streaming.url}/read")
    assert json.loads(out)["total"] == 1200000
    out = curl("--http2-prior-knowledge", "-X", "POST", f"{streaming.url}/read")
    assert json.loads(out)["total"] == 0


def test_req_read_outside_a_stream_body_route_raises(streaming):
    response = streaming.request("POST", "/whole", content=b"abc")
    assert response.status_code == 500
    assert "stream_body = true" in streaming.log()


def test_a_slow_reader_holds_the_client_back(streaming):
    """The handler takes 16 KiB every 0.2 s: the client cannot push a 48 MiB body ahead of it,
    and the server's memory stays flat."""
    total = 48 * 1024 * 1024
    head = (f"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n"
            "x-pause: 0.2\r\nx-chunk: 16384\r\n\r\n").encode()
    rss_before = streaming.rss_mib()
    with socket.create_connection(("127.0.0.1", streaming.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.sendall(head)
        sock.setblocking(False)
        sent = 0
        block = b"z" * 65536
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                sent += sock.send(block)
            except BlockingIOError:
                time.sleep(0.01)
        rss_during = streaming.rss_mib()
    assert sent < 12 * 1024 * 1024, f"the client pushed {sent} bytes in 3 s past a handler reading 80 KB/s"
    assert rss_during - rss_before < 16, f"RSS grew from {rss_before:.1f} to {rss_during:.1f} MiB"
    streaming.assert_alive()


def test_max_body_size_still_bounds_a_streamed_body(moonwire):
    small = moonwire(main=STREAM_APP.replace("64 * 1024 * 1024", "100000"))
    response = small.request("POST", "/read", content=b"x" * 100001)
    assert response.status_code == 413
    chunked = small.request("POST", "/read", content=iter([b"x" * 60000, b"y" * 60000]))
    assert chunked.status_code == 413
    small.assert_alive()


def test_a_client_that_stops_sending_a_streamed_body_is_timed_out(moonwire):
    """The silence of a client asked for body bytes is bounded by header_timeout (408 and a log
    line), as for a body read whole."""
    server = moonwire(main=STREAM_APP.replace("max_body_size = 64 * 1024 * 1024", "header_timeout = 1"))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        reply = read_until_close(sock, idle=5, total=8)
    assert reply.closed and reply.elapsed < 5, reply
    assert server.wait_for_log("no request body bytes for 1 s"), server.log()
    server.assert_alive()


def test_reads_the_server_holds_back_are_not_timed(moonwire):
    """A handler that waits 2.5 s before it reads (past header_timeout, while the server holds
    the client back) is not the client's silence: the whole body arrives."""
    server = moonwire(main=STREAM_APP.replace("max_body_size = 64 * 1024 * 1024", "header_timeout = 1"))
    body = b"q" * (4 * 1024 * 1024)
    answer = server.request("POST", "/read", content=body, headers={"x-delay": "2.5"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["total"] == len(body), answer.text
