"""The site and the server the HTTP/2 tests share (test_http2.py, test_http2_limits.py; the
engine fixtures also test_http2_engine.py): the Lua app, the files, a module-wide server with a
TLS listener and the plain port, and each test's target over h2 (TLS, ALPN) or h2c. Test
modules import the fixtures by name.

Every test runs once per HTTP/2 engine (`engine`, ids `nio` and `nghttp2`, issue 27): the
`moonwire` and `moonwire_module` fixtures here wrap conftest's, so that every server a test
starts serves its scripts with `moonwire.options{ http2 = { engine = ... } }` first. The
engine is module-wide, so pytest runs a module's tests engine by engine and starts each shared
server once per engine."""
import os
import shutil
import subprocess

import pytest

from http2_client import target_of
from tls_certs import start_tls

BIG = 10 * 1024 * 1024
ENGINES = ["nio", "nghttp2"]

APP = r"""
moonwire.options{ limits = { max_body_size = 32 * 1024 * 1024 } }
moonwire.get("/info", function(req, res)
  res:json({version = req.version, scheme = req.scheme, method = req.method, path = req.path,
            q = req.query.q, agent = req:header("user-agent")})
end)
moonwire.post("/length", function(req, res) res:send(tostring(#req.body)) end)
moonwire.get("/custom", function(req, res)
  res.status = 201
  res:header("X-Custom", "yes")
  res:send("made")
end)
moonwire.get("/stream", function(req, res)
  for i = 1, 5 do res:write("part" .. i .. ";"); moonwire.sleep(0.02) end
  res:finish()
end)
moonwire.get([[/sleep/(\d+)]], function(req, res) moonwire.sleep(0.1); res:send("slept " .. req.params[1]) end)
moonwire.get("/fast", function(req, res) res:send("ok") end)
local a = moonwire.vhost([[^a\.test$]])
a:get("/who", function(req, res) res:send("vhost a") end)
moonwire.get("/who", function(req, res) res:send("default host") end)
"""

SITE = {
    "index.html": b"<!doctype html><link rel=stylesheet href=/style.css><script src=/app.js></script>index",
    "gone.html": b"<!doctype html><p>no pushes here</p>",
    "style.css": b"body { color: #123456 }\n" * 20,
    "app.js": b"console.log('app');\n" * 30,
}


# --- the engine ----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    return request.param


def engine_option(engine):
    """The Lua line that chooses `engine`."""
    return f'moonwire.options{{ http2 = {{ engine = "{engine}" }} }}\n'


def serving_with(launcher, engine):
    """The launcher, each server's Lua source preceded by the option that chooses `engine`."""
    def start(main, **options):
        return launcher(engine_option(engine) + main, **options)
    return start


@pytest.fixture
def moonwire(moonwire, engine):  # noqa: F811 (wraps conftest's)
    return serving_with(moonwire, engine)


@pytest.fixture(scope="module")
def moonwire_module(moonwire_module, engine):  # noqa: F811 (wraps conftest's)
    return serving_with(moonwire_module, engine)


# --- servers and targets -------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    for name, content in SITE.items():
        (www / name).write_bytes(content)
    (www / "big.bin").write_bytes(os.urandom(BIG))
    return www


@pytest.fixture(scope="module")
def server(moonwire_module, certs, site):
    """One server with APP for the tests that only read: a TLS listener and the plain port."""
    return start_tls(moonwire_module, certs, APP, www=site, threads=2)


@pytest.fixture(params=["tls", "h2c"])
def target(request, server, certs):
    return target_of(server, certs, request.param)


def tool(name):
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
    return name


def run(*arguments, timeout=60):
    return subprocess.run(list(arguments), capture_output=True, text=True, timeout=timeout)


def curl_version_and_body(*arguments):
    """(HTTP version, body) of one curl request."""
    result = run(tool("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_version}", *arguments, timeout=20)
    assert result.returncode == 0, result.stderr
    body, version = result.stdout.rsplit("\n", 1)
    return version, body


# --- the request model ---------------------------------------------------------------------
