"""Fixtures of the integration tests; the helpers they use are in harness.py (servers, raw
HTTP/1.1) and tls_certs.py (certificates).

- `moonwire` starts servers for one test, `moonwire_module` servers that a whole test module
  shares; both are factories: moonwire(main="lua source", files={...}) or moonwire(app="events"),
  with the options of harness.Server (www, dev, threads, env). Servers stop at teardown.
- `redis_server`: a factory of Debian's redis-server on free ports (cluster_servers.RedisServer),
  redis_server(password=None); each stops at teardown.
- `haproxy`: a factory of Debian's haproxy balancing round robin over servers
  (cluster_servers.HAProxy), haproxy([server, ...]); each stops at teardown.
- `certs`: the test certificates, made once per test session (per xdist worker).

The suite runs on two xdist workers (`-n 2 --dist loadgroup`, see the Makefile): the tests marked
`xdist_group("autobahn")` (the Autobahn run, about 7 minutes) go to one worker and those marked
`xdist_group("dist")` (`make dist`, a release build of several minutes) to the other, while the
other tests are shared out to both; the groups are collected first so that they start at once,
not last.
"""
import shutil

import pytest

from cluster_servers import HAProxy, RedisServer
from harness import Launcher
from tls_certs import make_certificates


@pytest.fixture
def moonwire(tmp_path):
    """moonwire(main=None, *, app=None, files=None, www=WWW, dev=False, threads=2, env=None)
    -> harness.Server, stopped at teardown."""
    launcher = Launcher(tmp_path / "servers")
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def moonwire_module(tmp_path_factory):
    """Like `moonwire`, but the servers live for the whole test module."""
    launcher = Launcher(tmp_path_factory.mktemp("servers"))
    yield launcher
    launcher.stop_all()


@pytest.fixture
def redis_server():
    """redis_server(password=None, tls=None) -> cluster_servers.RedisServer, stopped at teardown."""
    servers = []

    def start(password=None, tls=None):
        servers.append(RedisServer(password, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def haproxy(tmp_path):
    """haproxy([server, ...]) -> cluster_servers.HAProxy in front of those servers, stopped at teardown."""
    proxies = []

    def start(servers):
        proxies.append(HAProxy(servers, tmp_path / f"haproxy-{len(proxies)}"))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """tls_certs.Certificates, made once per test session."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    return make_certificates(tmp_path_factory.mktemp("certs"))


def pytest_collection_modifyitems(items):
    """The long groups first: xdist's loadgroup hands out work in collection order."""
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)
