"""Starts the real moonwire binary on a free loopback port for each test that asks for it."""
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

import httpx
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("MOONWIRE_BIN", str(REPO / ".build" / "debug" / "moonwire"))
WWW = pathlib.Path(__file__).resolve().parent / "www"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moonwire:
    """One running server: its URL, its log, and raw-socket helpers."""

    def __init__(self, scripts, www=WWW, dev=False, threads=2, log_dir=None):
        self.scripts = pathlib.Path(scripts)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = pathlib.Path(log_dir or self.scripts.parent) / f"moonwire-{self.port}.log"
        self._log = open(self.log_path, "wb")
        args = [BINARY, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--scripts", str(self.scripts), "--www", str(www), "--threads", str(threads)]
        if dev:
            args.append("--dev")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moonwire exited with {self.process.returncode}:\n{self.log()}")
            if "listening on" in self.log():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moonwire did not start:\n{self.log()}")

    def log(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    def get(self, path, **kwargs):
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def request(self, method, path, **kwargs):
        return httpx.request(method, self.url + path, timeout=10, **kwargs)

    def raw(self, data, timeout=2.0, read_until_close=True):
        """Sends bytes on a fresh connection and returns what comes back until close or timeout."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            return read_all(s, timeout)

    def connect(self, timeout=5.0):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def read_all(sock, timeout=2.0):
    """Reads until the peer closes or nothing arrives for `timeout` seconds."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


@pytest.fixture
def moonwire(tmp_path):
    """A factory: moonwire(main_lua_source, files={"lib/x.lua": "..."}, dev=False) -> Moonwire."""
    servers = []

    def start(main, files=None, **options):
        scripts = tmp_path / f"scripts{len(servers)}"
        scripts.mkdir()
        (scripts / "main.lua").write_text(main)
        for name, text in (files or {}).items():
            path = scripts / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        server = Moonwire(scripts, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield pathlib.Path(folder)


# The issue-2 skeleton suite (test_skeleton_*.py) starts apps from apps/<name>/ with the
# fixtures of harness.py.
from harness import launch, launch_module  # noqa: E402,F401
