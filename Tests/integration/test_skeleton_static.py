"""Issue 2 — static files from --www when no handler answered: content types, index.html for
folders, 404, HEAD, headers set by OnBeforeCommand/handlers kept, and no way out of the root."""
import shutil

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
    return moonwire_module(app="static", www=site)


def get_raw(server, target, method=b"GET"):
    reply = server.raw(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return reply


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


@pytest.mark.parametrize("path", ["/missing.html", "/nested/missing.css", "/no/such/folder/",
                                  "/index.html/extra"])
def test_missing_is_404(server, path):
    reply = server.get(path)
    assert reply.status_code == 404
    assert reply.headers["content-length"] == str(len(reply.content))
    assert reply.headers["server"] == "moonwire" and reply.headers["date"]
    assert reply.headers["x-before"] == "before-value"


def test_head_of_a_static_file(server, site):
    reply = server.raw(b"HEAD /nested/style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b""
    response = parse_one(reply.data, head=True)
    assert response.header("content-length") == str((site / "nested" / "style.css").stat().st_size)
    assert response.header("content-type").startswith("text/css")


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


def test_post_to_a_static_file_is_not_served(server):
    assert server.request("POST", "/index.html", content=b"x").status_code == 404


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
