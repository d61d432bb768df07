"""The event loop's cache of small static files (docs/http.md, "Static files"): a file written
again, grown or shrunk, deleted, renamed over a cached one with the same size and time, an
index that follows its folder, a moved link, and two writes within a second: the cache never
answers with a file that changed, moved or went away. A plain GET of a cached file takes the
answer made with its bytes, the same as the one prepared field by field; files over the
in-memory limit are sent from disk."""
import os

import pytest

from test_static_files import aged

@pytest.fixture
def cache_site(tmp_path):
    www = tmp_path / "www"
    (www / "docs").mkdir(parents=True)
    for name, text in {"note.txt": "first version", "docs/index.html": "<p>first index</p>",
                       "a.txt": "file A", "b.txt": "file B",
                       "page.html": "<p>" + "cached page " * 200 + "</p>"}.items():
        (www / name).write_text(text)
        aged(www / name)
    (www / "link.txt").symlink_to("a.txt")
    aged(www / "link.txt")
    return www


@pytest.fixture
def cache_server(moonwire, cache_site):
    """One event loop, so every request meets the same cache."""
    return moonwire("function OnCommandGet(req, res) end", www=cache_site, threads=1)


def served_twice(server, path):
    """The answer to `path` once it is in the cache (the first request reads the file)."""
    first, second = server.get(path), server.get(path)
    assert first.status_code == second.status_code == 200 and first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    return second


def test_a_cached_file_written_again_is_served_anew(cache_server, cache_site):
    before = served_twice(cache_server, "/note.txt")
    assert before.text == "first version"
    (cache_site / "note.txt").write_text("other version")  # the same size
    after = cache_server.get("/note.txt")
    assert after.text == "other version" and after.headers["etag"] != before.headers["etag"]


def test_a_cached_file_that_grows_or_shrinks_is_served_whole(cache_server, cache_site):
    served_twice(cache_server, "/note.txt")
    (cache_site / "note.txt").write_text("first version, and a longer second part")
    grown = cache_server.get("/note.txt")
    assert grown.text == "first version, and a longer second part"
    assert grown.headers["content-length"] == str(len(grown.text))
    (cache_site / "note.txt").write_text("short")
    assert cache_server.get("/note.txt").text == "short"


def test_a_deleted_cached_file_is_404(cache_server, cache_site):
    served_twice(cache_server, "/note.txt")
    (cache_site / "note.txt").unlink()
    assert cache_server.get("/note.txt").status_code == 404


def test_a_file_renamed_over_a_cached_one_is_served_even_with_the_same_size_and_time(cache_server, cache_site):
    served_twice(cache_server, "/note.txt")
    target = cache_site / "note.txt"
    times = os.stat(target)
    replacement = cache_site / "note.new"
    replacement.write_text("third version")
    os.utime(replacement, ns=(times.st_atime_ns, times.st_mtime_ns))
    replacement.rename(target)  # another inode, the same size and modification time
    assert cache_server.get("/note.txt").text == "third version"


def test_a_cached_index_follows_its_folder(cache_server, cache_site):
    assert served_twice(cache_server, "/docs/").text == "<p>first index</p>"
    (cache_site / "docs" / "index.html").write_text("<p>new index</p>")
    assert cache_server.get("/docs/").text == "<p>new index</p>"


def test_a_moved_link_leads_to_its_new_target(cache_server, cache_site):
    assert served_twice(cache_server, "/link.txt").text == "file A"
    (cache_site / "link.txt").unlink()
    (cache_site / "link.txt").symlink_to("b.txt")
    assert cache_server.get("/link.txt").text == "file B"


def test_a_file_written_twice_within_a_second_is_never_stale(cache_server, cache_site):
    """A file written in the last second is not cached: a second write in the same tick of
    the file system's clock may leave its size and modification time as they were."""
    fresh = cache_site / "fresh.txt"
    fresh.write_text("version 1")
    assert served_twice(cache_server, "/fresh.txt").text == "version 1"
    fresh.write_text("version 2")
    assert cache_server.get("/fresh.txt").text == "version 2"


def head_and_body(reply):
    """The status line and fields but Date (the clock moves), and the body."""
    head, _, body = reply.data.partition(b"\r\n\r\n")
    return [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")], body


@pytest.mark.parametrize("accept", [b"", b"Accept-Encoding: gzip\r\n"], ids=["identity", "gzip"])
def test_a_plain_get_from_memory_is_the_prepared_answer(cache_server, accept):
    """The first request reads the file and prepares its answer field by field; the next take
    the answer the cache made with the bytes: the same fields in the same order, the same body."""
    request = b"GET /page.html HTTP/1.1\r\nHost: x\r\n" + accept + b"Connection: close\r\n\r\n"
    first, second, third = (head_and_body(cache_server.raw(request)) for _ in range(3))
    assert first == second == third
    head, body = first
    assert head[0] == b"HTTP/1.1 200 OK" and (b"content-encoding: gzip" in head) == bool(accept), head
    assert b"content-length: %d" % len(body) in head
    head_only, nothing = head_and_body(cache_server.raw(request.replace(b"GET", b"HEAD")))
    assert sorted(head_only) == sorted(head) and nothing == b""


@pytest.mark.parametrize("size", [32 * 1024, 32 * 1024 + 1], ids=["in-memory", "over-the-limit"])
def test_files_up_to_the_limit_and_over_it(cache_server, cache_site, size):
    """32 KiB is the largest file kept in memory (docs/limits.md); one byte more is sent from
    disk: both whole, by range, and anew once written again."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (cache_site / "sized.bin").write_bytes(data)
    aged(cache_site / "sized.bin")
    for _ in range(3):
        reply = cache_server.get("/sized.bin")
        assert reply.status_code == 200 and reply.content == data
    tail = cache_server.get("/sized.bin", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    (cache_site / "sized.bin").write_bytes(data[::-1])
    assert cache_server.get("/sized.bin").content == data[::-1]
