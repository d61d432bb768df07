"""Metrics (moonwire.options{metrics = {path = ...}}): the Prometheus text exposition, read with
the Prometheus client's own parser (prometheus_client.parser), with values that match the traffic
sent (HTTP/1.1 and HTTP/2): requests by method, status and route pattern, latency, bytes, open connections and
WebSockets, WebSocket messages, Lua faults, reloads; moonwire.metrics series of scripts; bad names;
off by default; behind authentication. Real clients: httpx, Python's websockets."""
import base64
import signal

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from harness import run_cli, wait_until
from http2_client import Target
from websocket_client import url

APP = r"""
moonwire.options{metrics = {path = "/metrics"}}
local hits = moonwire.metrics.counter("app_hits_total", {kind = "user"})
local depth = moonwire.metrics.gauge("app_queue_depth")
local sizes = moonwire.metrics.histogram("app_sizes", {}, {1, 10, 100})
moonwire.get([[/users/(?<id>\d+)]], function(req, res)
  hits:inc()
  moonwire.metrics.counter("app_hits_total", {kind = "user"}):inc(2)
  res:send("user " .. req.params.id)
end)
moonwire.post("/items", function(req, res)
  depth:set(7) depth:inc(3) depth:dec()
  sizes:observe(5) sizes:observe(50)
  res.status = 201
  res:send("made")
end)
moonwire.get("/boom", function(req, res) error("kaboom") end)
moonwire.get("/bad", function(req, res)
  local ok, err = pcall(moonwire.metrics.counter, req:header("x-name"), {})
  res:send(tostring(err))
end)
moonwire.get("/out", function(req, res)
  local reply = moonwire.http.get("http://" .. req:header("host") .. "/users/9")
  res:send(reply.body)
end)
function OnMessage(ws, text) ws:send("echo " .. text) end
"""


def scrape(server, path="/metrics", **kwargs):
    reply = server.get(path, **kwargs)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def requests_of(samples, method, status, route):
    key = ("moonwire_http_requests_total", (("method", method), ("route", route), ("status", str(status))))
    return samples.get(key, 0)


def test_the_exposition_matches_the_traffic(moonwire):
    server = moonwire(APP)
    for user in ("1", "2", "3"):
        assert server.get(f"/users/{user}").text == f"user {user}"
    with Target(False, server.port, None).httpx() as client:
        reply = client.get(server.url + "/users/4")
        assert (reply.http_version, reply.text) == ("HTTP/2", "user 4")
    assert server.request("POST", "/items", content=b"x").status_code == 201
    assert server.get("/nowhere").status_code == 404
    assert server.get("/boom").status_code == 500
    with connect(url(server, "/ws")) as socket:
        for n in range(4):
            socket.send(f"m{n}")
            assert socket.recv(timeout=5) == f"echo m{n}"
        samples = scrape(server)
        assert samples[("moonwire_open_websockets", ())] == 1
    assert requests_of(samples, "GET", 200, r"/users/(?<id>\d+)") == 4
    assert requests_of(samples, "POST", 201, "/items") == 1
    assert requests_of(samples, "GET", 404, "none") == 1
    assert requests_of(samples, "GET", 500, "/boom") == 1
    assert requests_of(samples, "GET", 101, "none") == 1
    assert samples[("moonwire_websocket_messages_total", (("direction", "in"),))] == 4
    assert samples[("moonwire_websocket_messages_total", (("direction", "out"),))] == 4
    assert samples[("moonwire_lua_faults_total", (("kind", "error"),))] == 1
    assert samples[("moonwire_open_connections", ())] >= 1
    # Every answered request so far, the WebSocket's 101 included, is in the histogram.
    assert samples[("moonwire_http_request_duration_seconds_count", ())] == 8
    assert samples[("moonwire_http_request_duration_seconds_bucket", (("le", "+Inf"),))] == 8
    # 4 x "user N" (6 bytes) + "made" (4); the 404 and 500 pages add theirs.
    assert samples[("moonwire_http_response_bytes_total", ())] >= 4 * 6 + 4
    # The first scrape counts itself once the second one runs.
    again = scrape(server)
    assert requests_of(again, "GET", 200, "/metrics") == 1
    assert wait_until(lambda: scrape(server)[("moonwire_open_websockets", ())] == 0)


def test_script_series(moonwire):
    server = moonwire(APP)
    server.get("/users/7")
    server.request("POST", "/items", content=b"x")
    samples = scrape(server)
    assert samples[("app_hits_total", (("kind", "user"),))] == 3
    assert samples[("app_queue_depth", ())] == 9
    assert samples[("app_sizes_count", ())] == 2
    assert samples[("app_sizes_sum", ())] == 55
    assert samples[("app_sizes_bucket", (("le", "10.0"),))] == 1
    assert samples[("app_sizes_bucket", (("le", "100.0"),))] == 2


def test_outbound_requests_are_counted(moonwire):
    server = moonwire(APP)
    assert server.get("/out").text == "user 9"
    samples = scrape(server)
    assert samples[("moonwire_outbound_requests_total", ())] == 1
    assert requests_of(samples, "GET", 200, "/out") == 1


def test_bad_names_raise_with_a_clear_message(moonwire):
    server = moonwire(APP)
    assert "invalid metric name \"2fast\"" in server.get("/bad", headers={"X-Name": "2fast"}).text
    assert "invalid metric name \"a-b\"" in server.get("/bad", headers={"X-Name": "a-b"}).text
    assert "already a histogram" in server.get("/bad", headers={"X-Name": "app_sizes"}).text
    assert "already has labels kind" in server.get("/bad", headers={"X-Name": "app_hits_total"}).text
    assert "already a counter" not in server.get("/bad", headers={"X-Name": "fine_total"}).text


def test_bad_labels_and_options_are_load_errors(moonwire, tmp_path):
    for script, message in [
        ('moonwire.metrics.counter("x", {["bad-label"] = "v"})', 'invalid label name "bad-label"'),
        ('moonwire.metrics.gauge("x", {a = "line\\nbreak"})', 'invalid value for label "a"'),
        ('moonwire.metrics.histogram("h", {}, {5, 1})', "increasing order"),
        ('moonwire.metrics.counter("moonwire_reloads_total")', "names starting with moonwire_ are the server's"),
        ('moonwire.metrics.counter("c") moonwire.metrics.counter("c", {x = "1"})', 'metric "c" already has no labels'),
        ('moonwire.options{metrics = {path = "/metrics", paht = 1}}', "unknown option metrics.paht"),
        ('moonwire.options{metrics = {path = "metrics"}}', "metrics.path must be a path starting with /"),
    ]:
        (tmp_path / "main.lua").write_text(script + "\n")
        result = run_cli("check", "--scripts", tmp_path)
        assert result.returncode != 0 and message in result.stderr + result.stdout, (script, result.stderr)


def test_metrics_are_off_by_default(moonwire):
    server = moonwire('moonwire.get("/", function(req, res) res:send("hi") end)')
    assert server.get("/").text == "hi"
    assert server.get("/metrics").status_code == 404


def test_the_metrics_path_is_behind_authentication(moonwire):
    server = moonwire(r"""
    moonwire.options{metrics = {path = "/internal/metrics"}, authentication = {enabled = true}}
    function OnAuthentication(req, user, password) return user == "ops" and password == "pw" end
    """)
    assert server.get("/internal/metrics").status_code == 401
    token = base64.b64encode(b"ops:pw").decode()
    samples = scrape(server, "/internal/metrics", headers={"Authorization": f"Basic {token}"})
    assert requests_of(samples, "GET", 401, "none") == 1


def test_reloads_are_counted(moonwire):
    server = moonwire(APP)
    server.process.send_signal(signal.SIGHUP)
    assert server.wait_for_log("scripts reloaded")
    assert scrape(server)[("moonwire_reloads_total", ())] == 1


def test_proxied_requests_are_counted_as_upstream_requests(moonwire):
    upstream = moonwire("moonwire.get('/hello', function(req, res) res:send('hi') end)")
    server = moonwire(f"""
moonwire.options{{metrics = {{path = "/metrics"}}}}
moonwire.proxy("/up/.*", "{upstream.url}/")
""")
    for _ in range(3):
        assert server.get("/up/hello").text == "hi"
    samples = scrape(server)
    assert samples[("moonwire_outbound_requests_total", ())] == 3
    assert requests_of(samples, "GET", 200, "/up/.*") == 3
