"""The live dashboard (moonwire.options{dashboard = {path = ...}}): off by default; its feed
(server-sent events at path/feed, one JSON frame a second) with values that match the traffic
sent (requests by status class, latency, connections and WebSockets, Lua faults, reloads, the
table of recent faults and reloads); the page and the feed behind authentication; bad options
are load errors; and the page in a real browser (Chromium headless through Selenium): it loads
without console errors and its request counter rises while traffic is sent. The browser test
saves screenshots (light and dark) under .build/test-artifacts/."""
import base64
import json
import signal
import threading
import time

import httpx
from websockets.sync.client import connect

from harness import REPO, chromium_driver, run_cli, wait_until
from websocket_client import url

APP = r"""
moonwire.options{dashboard = {path = "/_dashboard"}}
moonwire.get("/hello", function(req, res) res:send("hi") end)
moonwire.get("/boom", function(req, res) error("kaboom from the test") end)
function OnMessage(ws, text) ws:send("echo " .. text) end
"""

AUTHENTICATED = r"""
moonwire.options{dashboard = {path = "/ops/dashboard"}, authentication = {enabled = true}}
function OnAuthentication(req, user, password) return user == "ops" and password == "pw" end
"""
BASIC = {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()}


def frames(server, predicate, path="/_dashboard/feed", headers=None, timeout=10.0):
    """Reads the feed until a frame satisfies `predicate`; returns that frame (or fails with the
    last one seen)."""
    last = None
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", server.url + path, headers=headers, timeout=timeout) as reply:
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("data: "):
                last = json.loads(line[len("data: "):])
                if predicate(last):
                    return last
            assert time.monotonic() < deadline, f"no frame matched within {timeout} s; last: {last}"
    raise AssertionError(f"the feed ended; last frame: {last}")


def test_the_dashboard_is_off_by_default(moonwire):
    server = moonwire('moonwire.get("/", function(req, res) res:send("hi") end)')
    assert server.get("/").text == "hi"
    assert server.get("/_dashboard").status_code == 404
    assert server.get("/_dashboard/feed").status_code == 404


def test_bad_options_are_load_errors(tmp_path):
    for script, message in [
        ('moonwire.options{dashboard = {path = "/d", paht = 1}}', "unknown option dashboard.paht"),
        ('moonwire.options{dashboard = {path = "dash"}}', "dashboard.path must be a path starting with /"),
        ('moonwire.options{dashboard = {}}', "dashboard.path must be a path starting with /"),
        ('moonwire.options{dashboard = "/d"}', "dashboard must be a table"),
    ]:
        (tmp_path / "main.lua").write_text(script + "\n")
        result = run_cli("check", "--scripts", tmp_path)
        assert result.returncode != 0 and message in result.stderr + result.stdout, (script, result.stderr)


def test_the_page_is_one_self_contained_document(moonwire):
    server = moonwire(APP)
    reply = server.get("/_dashboard")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in reply.headers["content-security-policy"]
    page = reply.text
    assert "<canvas" in page and "EventSource" in page
    # Nothing is loaded from elsewhere: no external script, style, font or image.
    for needle in ("http://", "https://", "src=\"/", "@import", "url("):
        assert needle not in page, needle
    assert server.request("POST", "/_dashboard").status_code == 404


def test_the_feed_matches_the_traffic(moonwire):
    server = moonwire(APP)
    with server.client() as client:
        for _ in range(25):
            assert client.get("/hello").text == "hi"
        for _ in range(3):
            assert client.get("/nowhere").status_code == 404
        for _ in range(2):
            assert client.get("/boom").status_code == 500

    frame = frames(server, lambda f: f["requests"] >= 30 and f["faults"].get("error", 0) >= 2)
    assert frame["requests"] == 30
    assert frame["status"] == {"1xx": 0, "2xx": 25, "3xx": 0, "4xx": 3, "5xx": 2}
    assert frame["faults"]["error"] == 2
    assert frame["reloads"] == 0
    assert frame["connections"] >= 1  # the feed's own
    assert frame["websockets"] == 0
    assert 0 < frame["p50"] <= frame["p90"] <= frame["p99"] <= 10
    assert frame["latencyWindow"] == 10
    # The rates over the seconds sampled add up to the requests answered meanwhile.
    assert sum(frame["history"]) > 0
    faults = [e for e in frame["events"] if e["type"] == "fault"]
    assert len(faults) == 2
    assert all(e["kind"] == "error" and "kaboom from the test" in e["message"] for e in faults)
    assert all("/boom" in e["detail"] for e in faults)

    with connect(url(server, "/ws")) as socket:
        socket.send("x")
        assert socket.recv(timeout=5) == "echo x"
        frame = frames(server, lambda f: f["websockets"] == 1)
        assert frame["connections"] >= 2

    server.process.send_signal(signal.SIGHUP)
    assert server.wait_for_log("scripts reloaded")
    frame = frames(server, lambda f: f["reloads"] == 1)
    reloads = [e for e in frame["events"] if e["type"] == "reload"]
    assert len(reloads) == 1 and reloads[0]["kind"] == "ok", frame["events"]
    assert "generation 2" in reloads[0]["message"]


def test_a_failed_reload_is_listed(moonwire):
    server = moonwire(APP)
    (server.scripts / "main.lua").write_text(APP + "\nthis is not lua\n")
    server.process.send_signal(signal.SIGHUP)
    assert server.wait_for_log("reload failed")
    frame = frames(server, lambda f: any(e["type"] == "reload" for e in f["events"]))
    failed = [e for e in frame["events"] if e["type"] == "reload"]
    assert failed[0]["kind"] == "failed" and "main.lua" in failed[0]["message"]
    assert frame["reloads"] == 0


def test_the_page_and_the_feed_are_behind_authentication(moonwire):
    server = moonwire(AUTHENTICATED)
    for path in ("/ops/dashboard", "/ops/dashboard/feed"):
        refused = server.get(path)
        assert refused.status_code == 401, path
        assert "text/event-stream" not in refused.headers.get("content-type", "")
        assert server.get(path, headers={"Authorization": "Basic " + base64.b64encode(b"ops:no").decode()}).status_code == 401
    assert server.get("/ops/dashboard", headers=BASIC).status_code == 200
    # The refusals were answered and counted like any request.
    frame = frames(server, lambda f: f["status"]["4xx"] >= 4, path="/ops/dashboard/feed", headers=BASIC)
    assert frame["status"]["4xx"] == 4


def test_a_browser_signed_in_with_basic_gets_the_feed(moonwire):
    server = moonwire(AUTHENTICATED)
    driver = chromium_driver()
    try:
        driver.get(f"http://ops:pw@127.0.0.1:{server.port}/ops/dashboard")
        status = lambda: driver.find_element("id", "status-text").text  # noqa: E731
        assert wait_until(lambda: status().startswith("live"), timeout=10), status()
        assert driver.get_log("browser") == []
    finally:
        driver.quit()


def test_an_open_feed_does_not_hold_a_graceful_stop(moonwire):
    server = moonwire(APP.replace("moonwire.options{", "moonwire.options{drain_timeout = 30, "))
    with httpx.stream("GET", server.url + "/_dashboard/feed", timeout=10) as reply:
        lines = reply.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 5
        # The stream ended with its last chunk: httpx raises on a body cut short.
        list(lines)
    assert "drain timeout" not in server.log()


def test_feeds_whose_clients_left_are_let_go(moonwire):
    server = moonwire(APP)
    for _ in range(5):
        with httpx.stream("GET", server.url + "/_dashboard/feed", timeout=10) as reply:
            assert next(line for line in reply.iter_lines() if line.startswith("data: "))
    frame = frames(server, lambda f: f["connections"] == 1)
    assert frame["connections"] == 1


def test_the_page_in_a_browser_counts_the_traffic(moonwire):
    server = moonwire(APP)
    driver = chromium_driver()
    stop = threading.Event()

    def traffic():
        with server.client() as client:
            while not stop.is_set():
                client.get("/hello")
                if client.get("/boom").status_code != 500:
                    return
                time.sleep(0.02)

    sender = threading.Thread(target=traffic)
    try:
        driver.set_window_size(1280, 1000)
        driver.get(server.url + "/_dashboard")
        counter = lambda: float(driver.find_element("id", "requests-total").get_attribute("data-value"))  # noqa: E731
        status = lambda: driver.find_element("id", "status-text").text  # noqa: E731
        assert wait_until(lambda: status().startswith("live"), timeout=10), status()
        before = counter()
        sender.start()
        assert wait_until(lambda: counter() >= before + 40, timeout=15), (before, counter())
        assert wait_until(lambda: driver.find_element("id", "p50").text not in ("", "–"), timeout=5)
        assert "kaboom" in driver.find_element("id", "events").text
        server.process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "generation 2" in driver.find_element("id", "events").text, timeout=10)
        assert driver.find_element("id", "reloads").text == "1"
        artifacts = REPO / ".build" / "test-artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        for scheme in ("light", "dark"):
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
                "features": [{"name": "prefers-color-scheme", "value": scheme}]})
            time.sleep(1.2)  # one more frame, drawn in the scheme's colours
            screenshot = artifacts / f"dashboard-{scheme}.png"
            driver.save_screenshot(str(screenshot))
            print(f"dashboard screenshot: {screenshot}")
        problems = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
        assert problems == [], problems
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(5)
        driver.quit()
