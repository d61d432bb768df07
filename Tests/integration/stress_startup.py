"""Stress script (not collected by pytest): starts `moonwire serve` again and again, fires
several concurrent first connections at each fresh server, and counts the servers that died.

Found with it: a SIGSEGV in HTTP1Pipeline.configure (Swift runtime generic-metadata
instantiation) when two event loops set up their first channels at the same moment, about
1 start in 100-150 on a 2-core machine.

    .venv/bin/python Tests/integration/stress_startup.py [starts=150] [connections=8]
"""
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402


def one_start(connections):
    port = harness.free_port()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="moonwire-stress-"))
    (folder / "data").mkdir()
    log = open(folder / "stderr.log", "wb")
    env = dict(os.environ, MOONWIRE_TEST_DIR=str(folder / "data"))
    process = subprocess.Popen(
        [harness.BINARY, "serve", "--host", "127.0.0.1", "--port", str(port),
         "--scripts", str(harness.APPS / "protocol"), "--www", str(harness.WWW), "--threads", "2"],
        stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)

        def hit():
            try:
                harness.exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", idle=2)
            except OSError:
                pass

        threads = [threading.Thread(target=hit) for _ in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        time.sleep(0.1)
        return process.poll(), folder
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log.close()


def main():
    starts = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    died = 0
    for i in range(starts):
        code, folder = one_start(connections)
        if code is not None:
            died += 1
            print(f"start {i}: server exited with {code}; log in {folder / 'stderr.log'}")
    print(f"{died} of {starts} servers died")
    return 1 if died else 0


if __name__ == "__main__":
    sys.exit(main())
