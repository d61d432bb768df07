"""Runs the real `moonwire` binary for the integration tests and talks to it over loopback sockets.

- `Server` is one running `moonwire serve --host 127.0.0.1 --port <free> --scripts <folder>
  --www <folder> --threads 2 [--dev]`, started in a folder of its own (its working directory),
  with at most `fd_limit` file descriptors when given (RLIMIT_NOFILE, set for the server only),
  ready once its log says `listening on` (at most 20 s), stopped with SIGTERM (SIGKILL after
  10 s). Its stdout and stderr go to one log file the tests read.
- The scripts come either from a folder under Tests/integration/apps/ (`app="events"`) or from
  Lua source a test passes (`main="..."`, written to `scripts/main.lua` in the server's folder).
  conftest.py's `moonwire` and `moonwire_module` fixtures start servers through `Launcher`.
- Each server's folder has a `data/` folder, passed to the scripts as the environment variable
  MOONWIRE_TEST_DIR; apps append event records there (files are shared by all event loops,
  globals are not: every loop has its own Lua VM).
- `exchange()` sends raw bytes and reads until the server closes or goes quiet; `parse_responses`
  splits what came back into responses. `Server.rss_mib()` is the server's resident memory, for
  tests that bound it. Every loop here is bounded in time.
"""
import ctypes
import errno
import functools
import itertools
import os
import pathlib
import random
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
APPS = HERE / "apps"
WWW = HERE / "www"
BINARY = os.environ.get("MOONWIRE_BIN", str(REPO / ".build" / "debug" / "moonwire"))
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# httpx asks for gzip by default; the server compresses what it may, so the tests ask for the
# identity encoding and see the bytes the handlers produced. A test that wants compression asks.
IDENTITY = {"Accept-Encoding": "identity"}


def _ephemeral_low():
    try:
        return int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port no one listens on, for a server the test starts next. Picked below the kernel's
    ephemeral range: a port the kernel hands out (bind to 0) can be taken, before the server
    binds it, by the local end of any outgoing connection (a test's client, a server's
    upstream), which failed a run with "Address already in use"; outgoing connections never
    take a port below that range."""
    low = _ephemeral_low()
    if low > 11000:
        for _ in range(100):
            port = random.randint(10000, low - 1)
            with socket.socket() as s:
                try:
                    s.bind((HOST, port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def run_cli(*args, timeout=30, env=None, cwd=None):
    """Runs the binary to completion (check, version, test, new, a serve expected to fail)."""
    return subprocess.run([BINARY, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def wait_until(predicate, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --- raw HTTP/1.1 ------------------------------------------------------------------------------

@dataclass
class RawReply:
    data: bytes
    closed: bool          # the server closed (EOF or reset) before we stopped waiting
    reset: bool = False   # ... and it was a reset
    elapsed: float = 0.0  # seconds from the start of reading to the close / giving up
    close_delay: float = 0.0  # seconds from the last byte received to the close


def read_until_close(sock, idle=5.0, total=10.0):
    """Reads until EOF/reset (closed=True) or until nothing arrived for `idle` seconds or
    `total` seconds passed (closed=False)."""
    started = time.monotonic()
    deadline = started + total
    last_data = started
    chunks = []
    closed = reset = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(min(idle, remaining))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, ConnectionAbortedError):
            closed = reset = True
            break
        if not chunk:
            closed = True
            break
        chunks.append(chunk)
        last_data = time.monotonic()
    now = time.monotonic()
    return RawReply(b"".join(chunks), closed, reset, now - started, now - last_data)


def exchange(port, data, idle=5.0, total=10.0):
    """One fresh connection: write `data` (all of it, in one write), read until close/quiet."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking everything (e.g. 431)
        return read_until_close(s, idle=idle, total=total)


@dataclass
class Response:
    version: str
    status: int
    reason: str
    header_list: list
    body: bytes
    headers: dict = field(default_factory=dict)  # lowercase name -> values joined with ", "

    def header(self, name):
        return self.headers.get(name.lower())

    def all(self, name):
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


def parse_responses(data, head=()):
    """Splits a byte stream into responses (Content-Length or chunked framing). `head` holds
    the indexes (counting final answers only) of responses to HEAD requests, which have no
    body. 1xx answers are returned too."""
    responses = []
    final_index = 0
    rest = data
    for _ in range(1000):
        if not rest:
            break
        end = rest.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError(f"incomplete response head: {rest[:200]!r}")
        head_block, rest = rest[:end].decode("latin-1"), rest[end + 4:]
        lines = head_block.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError(f"not a status line: {lines[0]!r}")
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        header_list = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            header_list.append((name.strip(), value.strip()))
        joined = {}
        for name, value in header_list:
            key = name.lower()
            joined[key] = joined[key] + ", " + value if key in joined else value
        body = b""
        if 100 <= status < 200 or status in (204, 304) or (final_index in head and status >= 200):
            pass
        elif "chunked" in joined.get("transfer-encoding", "").lower():
            for _ in range(100000):
                line_end = rest.find(b"\r\n")
                size = int(rest[:line_end].split(b";")[0], 16)
                rest = rest[line_end + 2:]
                if size == 0:
                    rest = rest[rest.find(b"\r\n") + 2:]
                    break
                body += rest[:size]
                rest = rest[size + 2:]
        elif "content-length" in joined:
            length = int(joined["content-length"])
            body, rest = rest[:length], rest[length:]
        else:
            body, rest = rest, b""
        responses.append(Response(version, status, reason, header_list, body, joined))
        if status >= 200:
            final_index += 1
    return responses


def parse_one(data, head=False):
    responses = [r for r in parse_responses(data, head=(0,) if head else ()) if r.status >= 200]
    assert responses, f"no response in {data[:200]!r}"
    return responses[0]


def read_responses(sock, count, head=(), timeout=5.0):
    """Reads from an open connection until `count` final (>= 200) responses are complete and
    returns them (bytes beyond them fail the parse)."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        try:
            responses = [r for r in parse_responses(data, head=head) if r.status >= 200]
        except (ValueError, IndexError):
            responses = []
        if len(responses) >= count and _complete(data, head):
            return responses
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {count} responses; got {data[:500]!r}"
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data[:500]!r}"
        data += chunk


def _complete(data, head):
    """True when the last response in data has all its Content-Length bytes."""
    try:
        responses = parse_responses(data, head=head)
    except (ValueError, IndexError):
        return False
    if not responses:
        return False
    last = responses[-1]
    length = last.header("content-length")
    if length is None or last.status < 200 or last.body == b"" and int(length) == 0:
        return True
    index = len([r for r in responses if r.status >= 200]) - 1
    return index in head or len(last.body) == int(length)


# --- servers -----------------------------------------------------------------------------------

# Lua that defines record(name, line): it appends a line to the file `name` in the server's
# MOONWIRE_TEST_DIR, which `Server.records(name)` reads back. Put it first in a test's script.
LUA_RECORD = r"""
local dir = assert(os.getenv("MOONWIRE_TEST_DIR"))
local function record(name, line)
  local f = assert(io.open(dir .. "/" .. name, "a"))
  f:write(line, "\n")
  f:close()
end
"""


class Server:
    """One running `moonwire serve` on the scripts folder `scripts`, started in `workdir`."""

    def __init__(self, scripts, workdir, www=WWW, dev=False, threads=2, env=None, fd_limit=None, extra_args=()):
        self.scripts = pathlib.Path(scripts)
        assert (self.scripts / "main.lua").is_file(), f"no main.lua in {self.scripts}"
        self.www = pathlib.Path(www)
        self.workdir = pathlib.Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = self.workdir / "moonwire.log"
        self.args = [BINARY, "serve", "--host", HOST, "--port", str(self.port),
                     "--scripts", str(self.scripts), "--www", str(self.www),
                     "--threads", str(threads)]
        if dev:
            self.args.append("--dev")
        self.args += list(extra_args)
        environment = dict(os.environ)
        environment["MOONWIRE_TEST_DIR"] = str(self.data_dir)
        environment.update(env or {})
        self._log = open(self.log_path, "wb")
        limit = None if fd_limit is None else functools.partial(
            resource.setrlimit, resource.RLIMIT_NOFILE, (fd_limit, fd_limit))
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=environment, cwd=str(self.workdir), preexec_fn=limit)
        self.returncode = None
        self._wait_until_listening()

    def _wait_until_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                pytest.fail(f"moonwire exited with {self.process.returncode} before listening:\n"
                            f"{self.log()}", pytrace=False)
            if "listening on" in self.log():
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"moonwire did not listen on port {self.port} within {START_TIMEOUT} s:\n"
                    f"{self.log()}", pytrace=False)

    # --- the log and the files the scripts write -----------------------------------------
    def log(self):
        return self.log_path.read_text(errors="replace")

    def log_mark(self):
        return self.log_path.stat().st_size

    def log_since(self, mark):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def wait_for_log(self, needle, timeout=5.0, since=0):
        return wait_until(lambda: needle in self.log_since(since), timeout)

    def records(self, name):
        """Lines the scripts appended to MOONWIRE_TEST_DIR/<name> (empty list if none)."""
        path = self.data_dir / name
        if not path.exists():
            return []
        return [line for line in path.read_text(errors="replace").split("\n") if line]

    def wait_for_records(self, name, count, timeout=5.0):
        wait_until(lambda: len(self.records(name)) >= count, timeout)
        return self.records(name)

    def rss_mib(self):
        """The server's resident memory (VmRSS), in MiB."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS in /proc/PID/status")

    # --- HTTP -------------------------------------------------------------------------------
    def request(self, method, path, headers=None, **kwargs):
        merged = dict(IDENTITY)
        merged.update(headers or {})
        kwargs.setdefault("timeout", 10)
        return httpx.request(method, self.url + path, headers=merged, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def client(self, **kwargs):
        kwargs.setdefault("timeout", 10)
        return httpx.Client(base_url=self.url, headers=IDENTITY, **kwargs)

    def raw(self, data, idle=5.0, total=10.0):
        return exchange(self.port, data, idle=idle, total=total)

    def connect(self, timeout=5.0):
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def assert_alive(self, path="/alive"):
        """A fresh, ordinary request on a new connection is answered 200."""
        reply = self.raw(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                         b"Connection: close\r\n\r\n", idle=5)
        assert reply.data.startswith(b"HTTP/1.1 200 "), \
            f"server no longer answers {path}: {reply.data[:200]!r}\n{self.log()[-2000:]}"
        return parse_one(reply.data)

    # --- what the process holds ----------------------------------------------------------
    def descriptors(self):
        """How many file descriptors the server holds now."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss(self):
        """The server's resident memory, in bytes."""
        for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self):
        """User plus system CPU time the server has used so far."""
        fields = pathlib.Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # --- lifetime ---------------------------------------------------------------------------
    def stop(self, sig=signal.SIGTERM):
        """Stops the server (SIGKILL if `sig` did not within STOP_TIMEOUT); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        self.returncode = self.process.returncode
        if not self._log.closed:
            self._log.close()
        return self.returncode


class Bystander:
    """An ordinary client beside an attack, as a context manager: in a thread, a GET on a fresh
    connection every `interval` seconds (each given 5 s), noting its latency, and the server's
    RSS. Bounded: it stops after `limit` seconds if the test has not left the block by then.

        with Bystander(server) as others:
            ...attack...
        assert others.worst < 1.0 and others.peak_rss < ...
    """

    def __init__(self, server, path="/meanwhile", interval=0.2, limit=60.0):
        self.server = server
        self.request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        self.interval = interval
        self.limit = limit
        self.latencies = []
        self.failures = []
        self.peak_rss = server.rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def worst(self):
        """The slowest answer in seconds (5 s for one that did not come)."""
        return max(self.latencies, default=0.0)

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = exchange(self.server.port, self.request, idle=5.0, total=5.0).data
            except OSError as error:
                answer = repr(error).encode()
            self.latencies.append(time.monotonic() - started)
            if not answer.startswith(b"HTTP/1.1 200 "):
                self.failures.append(answer[:100])
            self.peak_rss = max(self.peak_rss, self.server.rss_mib())
            self._stop.wait(self.interval)


class Launcher:
    """Starts servers in folders under `base` and stops them all at the end (the fixtures'
    factory): launcher(main="lua source", files={"lib/x.lua": "..."}) or launcher(app="events"),
    plus Server's options (www, dev, threads, env, fd_limit, extra_args)."""

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.servers = []
        self.counter = itertools.count()

    def __call__(self, main=None, *, app=None, files=None, **options):
        assert (main is None) != (app is None), "give either the Lua source (main) or an app"
        if app is not None:
            scripts = APPS / app if isinstance(app, str) else pathlib.Path(app)
            name = scripts.name
        else:
            name = "scripts"
        workdir = self.base / f"{name}-{next(self.counter)}"
        workdir.mkdir(parents=True)
        if main is not None:
            scripts = workdir / "scripts"
            scripts.mkdir()
            (scripts / "main.lua").write_text(main)
            for relative, text in (files or {}).items():
                path = scripts / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        else:
            assert not files, "files are for Lua source given as main"
        server = Server(scripts, workdir, **options)
        self.servers.append(server)
        return server

    def stop_all(self):
        for server in self.servers:
            server.stop()


def shut_down_listener(pid, port):
    """Shuts down the socket process `pid` listens on at `port`, from outside, as a failing
    listener would be: its descriptor is copied into this process with pidfd_getfd(2) (allowed
    for a child of ours without root) and shut down there; the server's accept then fails and
    NIO closes the listener. Returns the descriptor number it had in `pid`."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(f"/proc/{pid}/net/{table.rsplit('/', 1)[1]}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inode = fields[9]
    assert inode, f"nothing listens on {port}"
    target = next(int(fd.name) for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir()
                  if os.readlink(fd) == f"socket:[{inode}]")
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(438, pidfd, target, 0)  # SYS_pidfd_getfd
        if copy < 0 and ctypes.get_errno() in (errno.ENOSYS, errno.EPERM):
            pytest.skip(f"pidfd_getfd(2) is not available here: {os.strerror(ctypes.get_errno())}")
        assert copy >= 0, os.strerror(ctypes.get_errno())
        with socket.socket(fileno=copy) as listener:
            listener.shutdown(socket.SHUT_RDWR)
    finally:
        os.close(pidfd)
    return target


# --- a real browser ------------------------------------------------------------------------


def chromium_driver(*arguments):
    """Chromium headless under Selenium, keeping the page's console messages for
    `driver.get_log("browser")`, with these command-line `arguments` besides; skips, saying
    why, only when the browser cannot start."""
    # selenium is in requirements.txt: without it the setup is broken, which fails the test.
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        pytest.skip(f"chromium cannot start: chromium={browser} chromedriver={driver_path} "
                    "(Tests/tools/setup.sh installs the chromium and chromium-driver packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", *arguments):
        options.add_argument(argument)
    try:
        return webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as error:
        pytest.skip(f"chromium cannot start: {error.msg}")
