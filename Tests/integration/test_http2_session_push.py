"""Server push on the nghttp2 engine (moonwire.options{http2 = {engine = "nghttp2"}}), beyond
what test_http2.py checks on both engines (the links promised, a client that disabled push,
push_remove): the promises come on the request's stream before its answer (RFC 9113 8.4), the
pushed request carries the client's user agent and language, nothing is promised when
http2.push is off, and a promised stream the client resets is dropped without harm to the rest."""
import re

import h2.errors
import h2.events
import h2.exceptions
import pytest

from http2_client import H2Client, target_of
from http2_site import SITE, run, site, tool  # noqa: F401 (fixtures)
from tls_certs import start_tls

LINKS = r"""
moonwire.get("/generated.js", function(req, res)
  res:header("Content-Type", "application/javascript")
  res:send("// made by a route for " .. (req:header("user-agent") or "nobody"))
end)
moonwire.push_preload("/index.html", {"/style.css", "/app.js", "/generated.js", "/index.html"})
moonwire.get("/slow.html", function(req, res) res:send("page") end)
moonwire.get("/slow.js", function(req, res) moonwire.sleep(0.3); res:send("late") end)
moonwire.push_preload("/slow.html", {"/slow.js", "/style.css"})
moonwire.push_preload("/gone.html", {"/style.css"})
moonwire.push_remove("/gone.html")
"""


def push_app(push="true"):
    return f'moonwire.options{{ http2 = {{ engine = "nghttp2", push = {push} }} }}\n' + LINKS


class OrderedClient(H2Client):
    """Notes every event in arrival order; with `reset_pushes`, resets each promised stream
    (CANCEL) as soon as its PUSH_PROMISE arrives, unless its answer came in the same read."""

    def __init__(self, target, reset_pushes=False, **options):
        self.events, self.reset_pushes = [], reset_pushes
        super().__init__(target, **options)

    def handle(self, event):
        self.events.append(event)
        super().handle(event)
        if self.reset_pushes and isinstance(event, h2.events.PushedStreamReceived):
            try:
                self.conn.reset_stream(event.pushed_stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.StreamClosedError:
                pass


@pytest.fixture
def push_server(moonwire, certs, site):
    return start_tls(moonwire, certs, push_app(), www=site)


def index_of(events, kind, stream):
    stream_of = (lambda e: e.parent_stream_id) if kind is h2.events.PushedStreamReceived else (lambda e: e.stream_id)
    return [i for i, e in enumerate(events) if isinstance(e, kind) and stream_of(e) == stream]


@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_links_are_promised_before_the_answer_and_pushed(push_server, certs, kind):
    target = target_of(push_server, certs, kind)
    with OrderedClient(target) as client:
        page = client.request("GET", "/index.html", headers=[("user-agent", "push-test/1"), ("accept-language", "fr")])
        assert client.wait(lambda: client.responses[page].done and len(client.pushes) == 3
                           and all(client.responses[pushed].done for pushed, _, _ in client.pushes), timeout=10), \
            f"pushes: {client.pushes}"
        promises = index_of(client.events, h2.events.PushedStreamReceived, page)
        answer = index_of(client.events, h2.events.ResponseReceived, page)
        assert len(promises) == 3 and len(answer) == 1 and max(promises) < answer[0], \
            "every PUSH_PROMISE comes before the answer's HEADERS"
        assert client.responses[page].status == 200 and bytes(client.responses[page].body) == SITE["index.html"]
        assert [headers[":path"] for _, _, headers in client.pushes] == ["/style.css", "/app.js", "/generated.js"]
        for pushed, parent, headers in client.pushes:
            assert parent == page and pushed % 2 == 0
            assert headers[":method"] == "GET" and headers[":scheme"] == target.scheme
            assert headers[":authority"] == client.authority
            assert headers["user-agent"] == "push-test/1" and headers["accept-language"] == "fr"
            assert client.responses[pushed].status == 200
        bodies = {headers[":path"]: bytes(client.responses[pushed].body) for pushed, _, headers in client.pushes}
        assert bodies == {"/style.css": SITE["style.css"], "/app.js": SITE["app.js"],
                          "/generated.js": b"// made by a route for push-test/1"}
        assert bytes(client.get("/app.js").body) == SITE["app.js"], "the connection goes on"


def test_nothing_is_promised_when_push_is_off(moonwire, certs, site):
    server = start_tls(moonwire, certs, push_app(push="false"), www=site)
    with target_of(server, certs, "tls").h2() as client:
        reply = client.get("/index.html")
        client.wait(lambda: False, timeout=0.5)
    assert reply.status == 200 and bytes(reply.body) == SITE["index.html"]
    assert client.pushes == []


@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_resetting_a_promised_stream_leaves_the_answer(push_server, certs, kind):
    with OrderedClient(target_of(push_server, certs, kind), reset_pushes=True) as client:
        page = client.request("GET", "/slow.html")
        assert client.wait(lambda: client.responses[page].done and len(client.pushes) == 2, timeout=10)
        assert client.responses[page].status == 200 and bytes(client.responses[page].body) == b"page"
        slow = next(pushed for pushed, _, headers in client.pushes if headers[":path"] == "/slow.js")
        client.wait(lambda: False, timeout=0.6)   # the pushed handler answers after its reset
        assert client.responses[slow].status is None and not client.responses[slow].body
        again = client.get("/slow.html")
        assert again.status == 200 and bytes(again.body) == b"page", "the connection goes on"
        assert client.terminated is None
    assert "error" not in push_server.log().lower(), push_server.log()


def test_nghttp_sees_the_promises_before_the_answer(push_server):
    nghttp = tool("nghttp")
    pushed = run(nghttp, "-nv", f"https://127.0.0.1:{push_server.tls_port}/index.html", timeout=20)
    out = pushed.stdout
    assert out.count("recv PUSH_PROMISE") == 3, out + pushed.stderr
    answer = re.search(r"recv \(stream_id=\d*[13579]\) :status: 200", out)   # the client's stream
    assert answer and out.rindex("recv PUSH_PROMISE") < answer.start(), out
    for path in ("/style.css", "/app.js", "/generated.js"):
        assert f":path: {path}" in out
    refused = run(nghttp, "-nv", "--no-push", f"https://127.0.0.1:{push_server.tls_port}/index.html", timeout=20)
    assert "PUSH_PROMISE" not in refused.stdout
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", refused.stdout), refused.stdout
