"""`make dist`: the tarball's binary has the Swift runtime linked in (ldd lists no Swift
library), and serves the demo app it ships from a folder of its own, with a PATH and an
environment that hold no Swift toolchain. The build is a full release build (several minutes
on two cores); it runs early, beside the Autobahn run, with everything else after it."""
import os
import shutil
import subprocess
import tarfile

import httpx
import pytest

from harness import HOST, REPO, free_port, wait_until

pytestmark = pytest.mark.xdist_group("dist")

# The libraries a Debian 12 system has without the Swift toolchain that the binary may use.
SYSTEM_LIBRARIES = {"linux-vdso.so.1", "libpcre2-8.so.0", "libz.so.1", "libc.so.6", "libm.so.6",
                    "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
                    "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1"}
# No Swift toolchain: only the system's own folders.
BARE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    made = subprocess.run(["make", "dist"], cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    tarballs = sorted((REPO / "dist").glob("moonwire-*-linux-*.tar.gz"), key=os.path.getmtime)
    assert tarballs, "make dist wrote no tarball"
    folder = tmp_path_factory.mktemp("dist")
    with tarfile.open(tarballs[-1]) as archive:
        archive.extractall(folder, filter="tar")
    (top,) = folder.iterdir()
    return top


def test_the_tarball_has_the_binary_the_unit_and_the_demo(unpacked):
    for name in ["moonwire", "moonwire.service", "INSTALL.md", "scripts/main.lua", "www/index.html"]:
        assert (unpacked / name).exists(), name
    assert os.access(unpacked / "moonwire", os.X_OK)


def test_ldd_lists_no_swift_library(unpacked):
    listed = subprocess.run(["ldd", str(unpacked / "moonwire")], capture_output=True, text=True,
                            env=BARE_ENV, timeout=30)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0].rsplit("/", 1)[-1] for line in listed.stdout.splitlines() if line.strip()}
    assert "not found" not in listed.stdout, listed.stdout
    assert not any("swift" in name.lower() or "foundation" in name.lower() or "dispatch" in name.lower()
                   for name in names), listed.stdout
    assert names <= SYSTEM_LIBRARIES, f"unexpected libraries: {sorted(names - SYSTEM_LIBRARIES)}"


def test_the_binary_serves_the_demo_without_the_toolchain(unpacked):
    if shutil.which("swift", path=BARE_ENV["PATH"]):
        pytest.skip("swift is installed in a system folder: this machine cannot show the binary does without it")
    checked = subprocess.run([str(unpacked / "moonwire"), "check", "--scripts", "scripts"], cwd=unpacked,
                             capture_output=True, text=True, env=BARE_ENV, timeout=60)
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stdout + checked.stderr
    port = free_port()
    log = open(unpacked / "serve.log", "w")
    server = subprocess.Popen([str(unpacked / "moonwire"), "serve", "--host", HOST, "--port", str(port),
                               "--scripts", "scripts", "--www", "www", "--threads", "1"],
                              cwd=unpacked, env=BARE_ENV, stdout=log, stderr=subprocess.STDOUT)
    try:
        def hello():
            try:
                return httpx.get(f"http://{HOST}:{port}/hello", timeout=2)
            except httpx.TransportError:
                return None
        answer = wait_until(hello, timeout=20)
        assert answer is not None, (unpacked / "serve.log").read_text()
        assert answer.status_code == 200 and answer.text.strip() == "Hello from Lua!"
        page = httpx.get(f"http://{HOST}:{port}/", timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        server.terminate()
        assert server.wait(timeout=20) == 0
        log.close()
