"""Static files from --www when no handler answered: content types, index.html for folders,
404, HEAD, headers set by OnBeforeCommand and handlers kept, no way out of the root, links;
validators, ranges, compression and streaming as nginx serves them. The loop's cache of small
files is tested in test_static_file_cache.py, large files, slow clients and curl in
test_static_file_delivery.py."""
import gzip
import os
import re
import shutil
import time

import httpx
import pytest

from harness import WWW, parse_one

SECRET = "TOP-SECRET-OUTSIDE-WWW-7f3a"
PRIVATE = "PRIVATE-SIBLING-FOLDER-91c2"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """<tmp>/www (a copy of Tests/integration/www), <tmp>/secret.txt next to it, and a sibling
    folder <tmp>/www-private whose name starts like the root's."""
    base = tmp_path_factory.mktemp("site")
    www = base / "www"
    shutil.copytree(WWW, www)
    (base / "secret.txt").write_text(SECRET + "\n")
    (base / "www-private").mkdir()
    (base / "www-private" / "secret.txt").write_text(PRIVATE + "\n")
    return www


@pytest.fixture(scope="module")
def server(moonwire_module, site):
    """apps/static on `site`: OnBeforeCommand adds X-Before, OnCommandGet adds X-Handler and
    answers /dynamic only."""
    return moonwire_module(app="static", www=site)


@pytest.fixture
def handler_server(moonwire):
    """Tests/integration/www behind a script that answers /dynamic itself, sends site.css
    for /sendfile (res:file) and adds a CORS header to every answer."""
    return moonwire("""
        function OnBeforeCommand(req, res) res:header("Access-Control-Allow-Origin", "*") end
        function OnCommandGet(req, res)
          if req.path == "/dynamic" then res:send("from lua") end
          if req.path == "/sendfile" then res:file("site.css") end
        end
    """)


# --- types, indexes, 404 and HEAD -----------------------------------------------------------

@pytest.mark.parametrize("path, content_type, marker", [
    ("/index.html", "text/html", b"home page"),
    ("/nested/index.html", "text/html", b"NESTED-INDEX-MARKER"),
    ("/nested/style.css", "text/css", b"NESTED-CSS-MARKER"),
    ("/nested/data.json", "application/json", b"NESTED-JSON-MARKER"),
    ("/nested/pixel.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("/site.css", "text/css", b"color"),
    ("/data.json", "application/json", b'"ok"'),
])
def test_content_type_by_extension(server, site, path, content_type, marker):
    reply = server.get(path)
    assert reply.status_code == 200
    assert reply.headers["content-type"].split(";")[0].strip() == content_type
    assert marker in reply.content
    assert reply.content == (site / path.lstrip("/")).read_bytes()
    assert reply.headers["content-length"] == str(len(reply.content))
    assert reply.headers["server"] == "moonwire" and reply.headers["date"]


def test_serves_files_with_types(handler_server):
    reply = handler_server.get("/site.css")
    assert reply.status_code == 200 and "color" in reply.text
    assert reply.headers["content-type"] == "text/css; charset=utf-8"
    assert handler_server.get("/data.json").headers["content-type"] == "application/json"
    blob = handler_server.get("/blob.bin")
    assert blob.content == bytes(range(256)) * 4
    assert blob.headers["content-type"] == "application/octet-stream"


def test_binary_file_is_served_byte_for_byte(server, site):
    reply = server.get("/blob.bin")
    assert reply.status_code == 200 and reply.content == (site / "blob.bin").read_bytes()


def test_index_html_for_folders(server):
    root = server.get("/")
    assert root.status_code == 200 and "home page" in root.text
    assert root.headers["content-type"].startswith("text/html")
    nested = server.get("/nested/")
    assert nested.status_code == 200 and "NESTED-INDEX-MARKER" in nested.text
    assert nested.headers["content-type"].startswith("text/html")


def test_folder_without_trailing_slash(server):
    reply = server.get("/nested")
    # either the index directly, or a redirect to the slash form
    if reply.status_code in (301, 302, 307, 308):
        assert reply.headers["location"] in ("/nested/", f"{server.url}/nested/")
    else:
        assert reply.status_code == 200 and "NESTED-INDEX-MARKER" in reply.text


def test_index_and_folder_redirect(handler_server):
    assert "home page" in handler_server.get("/").text
    assert "docs index" in handler_server.get("/docs/").text
    reply = handler_server.get("/docs")
    assert reply.status_code == 301 and reply.headers["location"] == "/docs/"


@pytest.mark.parametrize("path", ["/missing.html", "/nested/missing.css", "/no/such/folder/",
                                  "/index.html/extra"])
def test_missing_is_404(server, path):
    reply = server.get(path)
    assert reply.status_code == 404
    assert reply.headers["content-length"] == str(len(reply.content))
    assert reply.headers["server"] == "moonwire" and reply.headers["date"]
    assert reply.headers["x-before"] == "before-value"


def test_hidden_files_are_not_served(handler_server):
    assert handler_server.get("/.env").status_code == 404


def test_head_of_a_static_file(server, site):
    reply = server.raw(b"HEAD /nested/style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b""
    response = parse_one(reply.data, head=True)
    assert response.header("content-length") == str((site / "nested" / "style.css").stat().st_size)
    assert response.header("content-type").startswith("text/css")


# --- handlers and OnBeforeCommand come first ------------------------------------------------

def test_headers_from_before_command_and_handler_are_kept(server):
    for path in ["/index.html", "/nested/pixel.png", "/nested/"]:
        reply = server.get(path)
        assert reply.status_code == 200, path
        assert reply.headers["x-before"] == "before-value", path
        assert reply.headers["x-handler"] == "handler-value", path
    head = server.request("HEAD", "/site.css")
    assert head.headers["x-before"] == "before-value"


def test_handler_answer_wins_over_static(server):
    reply = server.get("/dynamic")
    assert reply.status_code == 200 and reply.text == "dynamic answer"
    assert reply.headers["x-before"] == "before-value"


def test_handlers_win_and_headers_carry_over(handler_server):
    assert handler_server.get("/dynamic").text == "from lua"
    assert handler_server.get("/site.css").headers["access-control-allow-origin"] == "*"
    assert handler_server.get("/sendfile").text.startswith("body")


def test_post_to_a_static_file_is_not_served(server):
    assert server.request("POST", "/index.html", content=b"x").status_code == 404


# --- no way out of the root -----------------------------------------------------------------

def get_raw(server, target, method=b"GET"):
    reply = server.raw(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return reply


TRAVERSALS = [
    b"/../secret.txt",
    b"/../../secret.txt",
    b"/nested/../../secret.txt",
    b"/./../secret.txt",
    b"//../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/.%2e/secret.txt",
    b"/%2e./secret.txt",
    b"/nested/%2e%2e/%2e%2e/secret.txt",
    b"/..%2fsecret.txt",
    b"/..%2Fsecret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/%2E%2E%2Fsecret.txt",
    b"/nested%2f..%2f..%2fsecret.txt",
    b"/%2F..%2Fsecret.txt",
    b"/..\\secret.txt",
    b"/nested\\..\\..\\secret.txt",
    b"/..%5csecret.txt",
    b"/%5c..%5csecret.txt",
    b"/nested/..%5C..%5Csecret.txt",
    b"/secret.txt%00",
    b"/..%00/secret.txt",
    b"/%00/../secret.txt",
    b"/index.html%00.txt",
    b"/secret.txt%00.html",
    b"/%252e%252e/secret.txt",
    b"/../www-private/secret.txt",
    b"/..%2fwww-private%2fsecret.txt",
    b"/%2e%2e/www-private/secret.txt",
    b"http://x/../secret.txt",
    b"http://x/%2e%2e/secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=[t.decode() for t in TRAVERSALS])
def test_no_way_out_of_www(server, target):
    for method in (b"GET", b"HEAD"):
        reply = get_raw(server, target, method)
        assert SECRET.encode() not in reply.data and PRIVATE.encode() not in reply.data
        status = reply.data[:12]
        assert status in (b"HTTP/1.1 400", b"HTTP/1.1 403", b"HTTP/1.1 404"), \
            f"{method.decode()} {target!r}: {reply.data[:200]!r}"
    server.assert_alive("/index.html")


# --- validators, ranges, compression and streaming ------------------------------------------

FILES_APP = """
function OnCommandGet(req, res)
  if req.path == "/video" then res:file("big.bin") end
  if req.path == "/stream" then
    for i = 1, 20 do res:write(string.rep(string.char(64 + i), 1000)) end
  end
  if req.path == "/text" then res:send(string.rep("compress me ", 500)) end
end
"""


def aged(path, seconds=60):
    """Moves a file's times `seconds` back: the server caches only small files that were not
    written in the last second."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


@pytest.fixture(params=["disk", "cached"])
def file_site(tmp_path, request):
    """The files, fresh (every answer from disk) or written a minute ago (the small ones are
    answered from the loop's cache after the first request)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(bytes(range(256)) * 4096)
    (www / "page.html").write_text("<p>" + "hello static world " * 200 + "</p>")
    (www / "tiny.txt").write_text("tiny")
    (www / "photo.png").write_bytes(b"\x89PNG" + bytes(5000))
    if request.param == "cached":
        for path in www.iterdir():
            aged(path)
    return www


@pytest.fixture
def file_server(moonwire, file_site):
    return moonwire(FILES_APP, www=file_site, threads=1)


def test_validators_give_304(file_server):
    first = file_server.get("/page.html")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["accept-ranges"] == "bytes"
    assert file_server.get("/page.html", headers={"If-None-Match": etag}).status_code == 304
    assert file_server.get("/page.html", headers={"If-None-Match": '"other"'}).status_code == 200
    assert file_server.get("/page.html", headers={"If-Modified-Since": modified}).status_code == 304
    assert file_server.get("/page.html", headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status_code == 200
    assert file_server.get("/page.html", headers={"If-Match": '"other"'}).status_code == 412


def test_ranges(file_server):
    whole = bytes(range(256)) * 4096
    reply = file_server.get("/big.bin", headers={"Range": "bytes=100-199"})
    assert reply.status_code == 206 and reply.content == whole[100:200]
    assert reply.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert file_server.get("/big.bin", headers={"Range": "bytes=-10"}).content == whole[-10:]
    assert file_server.get("/big.bin", headers={"Range": f"bytes={len(whole) - 5}-"}).content == whole[-5:]
    unsatisfiable = file_server.get("/big.bin", headers={"Range": f"bytes={len(whole)}-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.headers["content-range"] == f"bytes */{len(whole)}"
    assert file_server.get("/big.bin", headers={"Range": "bytes=0-1,5-6"}).status_code == 200


def test_if_range(file_server):
    etag = file_server.get("/big.bin").headers["etag"]
    assert file_server.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert file_server.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": '"stale"'}).status_code == 200


def test_handler_file_is_range_aware(file_server):
    reply = file_server.get("/video", headers={"Range": "bytes=0-3"})
    assert reply.status_code == 206 and reply.content == bytes([0, 1, 2, 3])


def test_gzip_for_compressible_types_only(file_server):
    reply = httpx.get(file_server.url + "/page.html", headers={"Accept-Encoding": "gzip"})
    assert reply.headers["content-encoding"] == "gzip" and "hello static world" in reply.text
    assert reply.headers["vary"] == "Accept-Encoding"
    raw = file_server.raw(b"GET /page.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n").data
    head, _, body = raw.partition(b"\r\n\r\n")
    assert int(re.search(rb"content-length: (\d+)", head).group(1)) == len(body)
    assert b"hello static world" in gzip.decompress(body)
    assert "content-encoding" not in file_server.get("/page.html", headers={"Accept-Encoding": "identity"}).headers
    assert "content-encoding" not in file_server.get("/page.html", headers={"Accept-Encoding": "gzip;q=0"}).headers
    assert "content-encoding" not in file_server.get("/tiny.txt", headers={"Accept-Encoding": "gzip"}).headers
    assert "content-encoding" not in file_server.get("/photo.png", headers={"Accept-Encoding": "gzip"}).headers
    ranged = file_server.get("/page.html", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    assert ranged.status_code == 206 and "content-encoding" not in ranged.headers
    dynamic = httpx.get(file_server.url + "/text", headers={"Accept-Encoding": "gzip"})
    assert dynamic.headers["content-encoding"] == "gzip" and dynamic.text == "compress me " * 500


def test_gzip_variant_has_its_own_etag(file_server):
    plain = file_server.get("/page.html", headers={"Accept-Encoding": "identity"}).headers["etag"]
    zipped = file_server.get("/page.html", headers={"Accept-Encoding": "gzip"}).headers["etag"]
    assert plain != zipped
    assert file_server.get("/page.html", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped}).status_code == 304


def test_streamed_body_is_chunked(file_server):
    raw = file_server.raw(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").data
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    body = file_server.get("/stream").content
    assert body == b"".join(bytes([64 + i]) * 1000 for i in range(1, 21))


def test_streamed_body_to_http10_ends_with_close(file_server):
    raw = file_server.raw(b"GET /stream HTTP/1.0\r\n\r\n").data
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and len(body) == 20000


def test_links_are_followed_inside_the_root_only(file_server, file_site, tmp_path):
    """A name right in the root is served without canonicalising its path unless it is a
    link: links must still be followed, and refused when they lead out of the root."""
    (tmp_path / "secret.txt").write_text("outside")
    (file_site / "inside.txt").symlink_to("tiny.txt")
    (file_site / "outside.txt").symlink_to(tmp_path / "secret.txt")
    (file_site / "pages").symlink_to(file_site)
    (file_site / "away").symlink_to(tmp_path)
    assert file_server.get("/inside.txt").text == "tiny"
    assert file_server.get("/outside.txt").status_code == 404
    assert file_server.get("/pages/tiny.txt").text == "tiny"
    assert file_server.get("/away/secret.txt").status_code == 404
    assert file_server.get("/tiny.txt").text == "tiny"
