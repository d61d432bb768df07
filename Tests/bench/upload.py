"""A large upload by hand: MiB of random bytes (2048 by default) streamed as one multipart file
to a Moonwire server, then the same bytes to nginx writing the request body to disk
(client_body_in_file_only, through its DAV PUT), on loopback, in the same run. Prints the time,
the throughput, the server's peak RSS (sampled every 20 ms) and whether the SHA-256 of the file
on disk equals the client's. Not part of the suite (about a minute and 2 x size of disk):

    .venv/bin/python Tests/bench/upload.py [--mib 2048] [--binary .build/release/moonwire]
"""
import argparse
import hashlib
import http.client
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time

BOUNDARY = "mwBenchBoundary"
APP = """
moonwire.options{ uploads = { dir = "uploads", max_file_size = 1 << 40 } }
moonwire.post("/keep", function(req, res)
  local f = req.files[1]
  assert(os.rename(f.path, "kept.bin"))
  res:json{ size = f.size }
end)
"""
NGINX = """
user root; daemon off; worker_processes 1; error_log {dir}/error.log; pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off; client_max_body_size 0; client_body_in_file_only on;
  client_body_temp_path {dir}/body; client_body_buffer_size 128k;
  server {{ listen 127.0.0.1:{port}; root {dir}/www;
    location / {{ dav_methods PUT; create_full_put_path on; }} }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def send(port, method, path, mib, block, multipart, watch_pid):
    """Streams the body; returns (seconds, peak RSS MiB of watch_pid, status)."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() if multipart else b""
    tail = f"\r\n--{BOUNDARY}--\r\n".encode() if multipart else b""
    length = len(head) + mib * len(block) + len(tail)
    peak, done = [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(watch_pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.putrequest(method, path)
    connection.putheader("Content-Length", str(length))
    if multipart:
        connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    connection.endheaders()
    connection.send(head)
    for _ in range(mib):
        connection.send(block)
    connection.send(tail)
    response = connection.getresponse()
    response.read()
    elapsed = time.monotonic() - start
    done.set()
    sampler.join()
    return elapsed, peak[0], response.status


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=2048)
    parser.add_argument("--binary", default=".build/release/moonwire")
    args = parser.parse_args()
    block = os.urandom(1 << 20)
    expected = hashlib.sha256()
    for _ in range(args.mib):
        expected.update(block)
    expected = expected.hexdigest()
    work = pathlib.Path(tempfile.mkdtemp(prefix="mw-upload-"))
    try:
        (work / "scripts").mkdir()
        (work / "scripts" / "main.lua").write_text(APP)
        port = free_port()
        server = subprocess.Popen([os.path.abspath(args.binary), "serve", "--port", str(port), "--scripts", "scripts",
                                   "--threads", "2"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.5)
            seconds, peak, status = send(port, "POST", "/keep", args.mib, block, True, server.pid)
        finally:
            server.terminate()
            server.wait()
        same = status == 200 and sha256_file(work / "kept.bin") == expected
        print(f"moonwire: {args.mib} MiB in {seconds:.2f} s = {args.mib / seconds:.0f} MiB/s, "
              f"peak RSS {peak:.1f} MiB, status {status}, SHA-256 equal: {same}")
        (work / "kept.bin").unlink(missing_ok=True)
        if shutil.which("nginx"):
            for sub in ("body", "www"):
                (work / sub).mkdir()
            port = free_port()
            (work / "nginx.conf").write_text(NGINX.format(dir=work, port=port))
            nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
            try:
                time.sleep(1)
                worker = int(pathlib.Path(f"/proc/{nginx.pid}/task/{nginx.pid}/children").read_text().split()[0])
                seconds, peak, status = send(port, "PUT", "/big.bin", args.mib, block, False, worker)
            finally:
                nginx.terminate()
                nginx.wait()
            same = status in (201, 204) and sha256_file(work / "www" / "big.bin") == expected
            print(f"nginx (client_body_in_file_only, DAV PUT): {args.mib} MiB in {seconds:.2f} s = "
                  f"{args.mib / seconds:.0f} MiB/s, worker peak RSS {peak:.1f} MiB, "
                  f"status {status}, SHA-256 equal: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
