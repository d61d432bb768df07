"""Static files as nginx serves them (issue 8): validators, ranges, compression, streaming,
and bounded memory while several large files go out at once."""
import gzip
import hashlib
import re
import threading

import httpx
import pytest

APP = """
function OnCommandGet(req, res)
  if req.path == "/video" then res:file("big.bin") end
  if req.path == "/stream" then
    for i = 1, 20 do res:write(string.rep(string.char(64 + i), 1000)) end
  end
  if req.path == "/text" then res:send(string.rep("compress me ", 500)) end
end
"""


@pytest.fixture
def site(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(bytes(range(256)) * 4096)
    (www / "page.html").write_text("<p>" + "hello static world " * 200 + "</p>")
    (www / "tiny.txt").write_text("tiny")
    (www / "photo.png").write_bytes(b"\x89PNG" + bytes(5000))
    return www


@pytest.fixture
def server(moonwire, site):
    return moonwire(APP, www=site)


def test_validators_give_304(server):
    first = server.get("/page.html")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["accept-ranges"] == "bytes"
    assert server.get("/page.html", headers={"If-None-Match": etag}).status_code == 304
    assert server.get("/page.html", headers={"If-None-Match": '"other"'}).status_code == 200
    assert server.get("/page.html", headers={"If-Modified-Since": modified}).status_code == 304
    assert server.get("/page.html", headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status_code == 200
    assert server.get("/page.html", headers={"If-Match": '"other"'}).status_code == 412


def test_ranges(server):
    whole = bytes(range(256)) * 4096
    reply = server.get("/big.bin", headers={"Range": "bytes=100-199"})
    assert reply.status_code == 206 and reply.content == whole[100:200]
    assert reply.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert server.get("/big.bin", headers={"Range": "bytes=-10"}).content == whole[-10:]
    assert server.get("/big.bin", headers={"Range": f"bytes={len(whole) - 5}-"}).content == whole[-5:]
    unsatisfiable = server.get("/big.bin", headers={"Range": f"bytes={len(whole)}-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.headers["content-range"] == f"bytes */{len(whole)}"
    assert server.get("/big.bin", headers={"Range": "bytes=0-1,5-6"}).status_code == 200


def test_if_range(server):
    etag = server.get("/big.bin").headers["etag"]
    assert server.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert server.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": '"stale"'}).status_code == 200


def test_handler_file_is_range_aware(server):
    reply = server.get("/video", headers={"Range": "bytes=0-3"})
    assert reply.status_code == 206 and reply.content == bytes([0, 1, 2, 3])


def test_gzip_for_compressible_types_only(server):
    reply = httpx.get(server.url + "/page.html", headers={"Accept-Encoding": "gzip"})
    assert reply.headers["content-encoding"] == "gzip" and "hello static world" in reply.text
    assert reply.headers["vary"] == "Accept-Encoding"
    raw = server.raw(b"GET /page.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n").data
    head, _, body = raw.partition(b"\r\n\r\n")
    assert int(re.search(rb"content-length: (\d+)", head).group(1)) == len(body)
    assert b"hello static world" in gzip.decompress(body)
    assert "content-encoding" not in server.get("/page.html", headers={"Accept-Encoding": "identity"}).headers
    assert "content-encoding" not in server.get("/page.html", headers={"Accept-Encoding": "gzip;q=0"}).headers
    assert "content-encoding" not in server.get("/tiny.txt", headers={"Accept-Encoding": "gzip"}).headers
    assert "content-encoding" not in server.get("/photo.png", headers={"Accept-Encoding": "gzip"}).headers
    ranged = server.get("/page.html", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    assert ranged.status_code == 206 and "content-encoding" not in ranged.headers
    dynamic = httpx.get(server.url + "/text", headers={"Accept-Encoding": "gzip"})
    assert dynamic.headers["content-encoding"] == "gzip" and dynamic.text == "compress me " * 500


def test_gzip_variant_has_its_own_etag(server):
    plain = server.get("/page.html", headers={"Accept-Encoding": "identity"}).headers["etag"]
    zipped = server.get("/page.html", headers={"Accept-Encoding": "gzip"}).headers["etag"]
    assert plain != zipped
    assert server.get("/page.html", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped}).status_code == 304


def test_streamed_body_is_chunked(server):
    raw = server.raw(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").data
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    body = server.get("/stream").content
    assert body == b"".join(bytes([64 + i]) * 1000 for i in range(1, 21))


def test_streamed_body_to_http10_ends_with_close(server):
    raw = server.raw(b"GET /stream HTTP/1.0\r\n\r\n").data
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and len(body) == 20000


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


def test_links_are_followed_inside_the_root_only(server, site, tmp_path):
    """A name right in the root is served without canonicalising its path unless it is a
    link: links must still be followed, and refused when they lead out of the root."""
    (tmp_path / "secret.txt").write_text("outside")
    (site / "inside.txt").symlink_to("tiny.txt")
    (site / "outside.txt").symlink_to(tmp_path / "secret.txt")
    (site / "pages").symlink_to(site)
    (site / "away").symlink_to(tmp_path)
    assert server.get("/inside.txt").text == "tiny"
    assert server.get("/outside.txt").status_code == 404
    assert server.get("/pages/tiny.txt").text == "tiny"
    assert server.get("/away/secret.txt").status_code == 404
    assert server.get("/tiny.txt").text == "tiny"
