"""The servers around a cluster of Moonwire nodes in the tests, each Debian's own, on free
loopback ports: `RedisServer` (redis-server without persistence, with a raw `command()` client)
and `HAProxy` (haproxy balancing round robin over nodes); `start_cluster_nodes` starts nodes
that share one Redis. conftest.py's `redis_server` and `haproxy` fixtures stop them all."""
import pathlib
import shutil
import socket
import subprocess

import pytest

from harness import HOST, free_port, wait_until


def _resp_reply(reader):
    """Reads one RESP2 reply from a binary file (RedisServer.command)."""
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        return None if length < 0 else reader.read(length + 2)[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_resp_reply(reader) for _ in range(count)]
    raise RuntimeError(f"not RESP: {line!r}")


class RedisServer:
    """Debian's redis-server on a free loopback port, without persistence: `stop()` ends it
    (SIGKILL with kill=True), `start()` starts it again on the same port, with the same
    password (requirepass) when one was given. With `tls` (a tls_certs.Pair), it also takes
    TLS connections on a port of their own (`tls_url()`); `command()` stays on plain TCP."""

    def __init__(self, password=None, tls=None):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.skip("redis-server is not installed (Tests/tools/setup.sh installs it)")
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.process = None
        self.start()

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def tls_url(self, db=0):
        return f"rediss://127.0.0.1:{self.tls_port}/{db}"

    def start(self):
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            args += ["--tls-port", str(self.tls_port), "--tls-cert-file", str(self.tls.cert),
                     "--tls-key-file", str(self.tls.key), "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        assert wait_until(self._answers, timeout=10), "redis-server did not start"

    def _answers(self):
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def command(self, *args):
        """One command over a fresh connection (AUTH first when there is a password); the
        reply as Python values: bytes, int, None, lists; an error reply raises."""
        with socket.create_connection((HOST, self.port), timeout=5) as s:
            reader = s.makefile("rb")
            commands = ([("AUTH", self.password)] if self.password else []) + [args]
            for command in commands:
                parts = [a if isinstance(a, bytes) else str(a).encode() for a in command]
                s.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
            replies = [_resp_reply(reader) for _ in commands]
            return replies[-1]

    def stop(self, kill=False):
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(10)
        self.process = None


class HAProxy:
    """Debian's haproxy on a free loopback port, balancing HTTP and WebSockets round robin over
    `servers` (harness.Server), with a TCP check every 200 ms and redispatch, so a node that
    dies is skipped: a connect it refuses is retried on another. `stop()` ends it; the config
    and log are in `workdir`."""

    def __init__(self, servers, workdir):
        self.binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
        if self.binary is None:
            pytest.skip("haproxy is not installed (Tests/tools/setup.sh installs it)")
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        workdir = pathlib.Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "haproxy.cfg"
        backends = "\n".join(f"    server node{i} {HOST}:{server.port} check inter 200ms fall 1 rise 2"
                              for i, server in enumerate(servers))
        self.config.write_text(f"""global
    maxconn 4096
defaults
    mode http
    retries 3
    option redispatch
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h
frontend front
    bind {HOST}:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
{backends}
""")
        self._log = open(workdir / "haproxy.log", "wb")
        self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)], stdout=self._log,
                                        stderr=subprocess.STDOUT)
        if not wait_until(self._listens, timeout=10):
            self.stop()
            pytest.fail(f"haproxy did not listen:\n{(workdir / 'haproxy.log').read_text()}", pytrace=False)

    def _listens(self):
        assert self.process.poll() is None, "haproxy exited"
        try:
            socket.create_connection((HOST, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self._log.close()


def start_cluster_nodes(moonwire, redis, app, count, linked="link: connect", threads=2, env=None):
    """`count` nodes running `app` on one Redis, each linked (its log shows `linked`, which
    the app's OnLoadBalancerConnect writes). The app reads REDIS_URL, REDIS_PASSWORD and NODE
    (node0, node1, ...) from its environment; `env` adds to it (or sets another REDIS_URL)."""
    env = {"REDIS_URL": redis.url(), **(env or {})}
    if redis.password:
        env["REDIS_PASSWORD"] = redis.password
    nodes = [moonwire(app, threads=threads, env={**env, "NODE": f"node{i}"}) for i in range(count)]
    for node in nodes:
        assert node.wait_for_log(linked, timeout=10), node.log()[-2000:]
    return nodes
