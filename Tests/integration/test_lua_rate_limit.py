"""moonwire.limit from real handlers: a refused request answered 429 with Retry-After, one
bucket per key shared by both event loops (each loop has its own VM, so the VMs' ids show that
both served), tokens coming back at the rate, and bad arguments raising."""
import time

import httpx

APP = r"""
local vm = moonwire.uuid()   -- one per event loop's VM

moonwire.get("/api", function(req, res)
  local rate, burst = tonumber(req.query.rate), tonumber(req.query.burst)
  local ok, retry_after = moonwire.limit("api:" .. req.query.key, rate, burst)
  res:header("X-VM", vm)
  if not ok then
    res.status = 429
    res:header("Retry-After", tostring(math.ceil(retry_after)))
    return res:send("slow down, retry in " .. retry_after .. " s")
  end
  res:send("ok")
end)

moonwire.get("/bad", function(req, res)
  local args = {
    key = {nil, 1, 1}, rate = {"k", 0, 1}, burst = {"k", 1, 0},
  }
  moonwire.limit(table.unpack(args[req.query.arg], 1, 3))
  res:send("not reached")
end)
"""


def test_limit_is_shared_by_both_event_loops_and_answers_429_with_retry_after(moonwire):
    server = moonwire(APP, threads=2)
    statuses, vms, retry = [], set(), []
    # A fresh connection per request: the server hands connections to its loops in turn.
    for _ in range(30):
        reply = server.get("/api?key=shared&rate=0.01&burst=10")
        statuses.append(reply.status_code)
        vms.add(reply.headers["x-vm"])
        if reply.status_code == 429:
            retry.append(int(reply.headers["retry-after"]))
    assert len(vms) == 2, "both event loops served"
    assert statuses.count(200) == 10, statuses     # one bucket of 10, not 10 per loop
    assert statuses[:10] == [200] * 10 and set(statuses[10:]) == {429}
    # 0.01 token a second: the next token is up to 100 s away.
    assert all(1 <= seconds <= 100 for seconds in retry), retry


def test_tokens_come_back_at_the_rate_and_keys_are_separate(moonwire):
    server = moonwire(APP, threads=2)
    with httpx.Client(base_url=server.url, timeout=10) as client, httpx.Client(base_url=server.url, timeout=10) as other:
        assert client.get("/api?key=a&rate=2&burst=2").status_code == 200
        assert other.get("/api?key=a&rate=2&burst=2").status_code == 200
        refused = client.get("/api?key=a&rate=2&burst=2")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert other.get("/api?key=b&rate=2&burst=2").status_code == 200, "another key has its own bucket"
        time.sleep(1.1)                          # 2 a second: two tokens back
        assert client.get("/api?key=a&rate=2&burst=2").status_code == 200
        assert other.get("/api?key=a&rate=2&burst=2").status_code == 200


def test_bad_arguments_raise(moonwire):
    server = moonwire(APP, dev=True)
    for arg, message in [("key", "moonwire.limit: expected a string key"),
                         ("rate", "moonwire.limit: rate must be a positive number"),
                         ("burst", "moonwire.limit: burst must be a number of at least 1")]:
        reply = server.get(f"/bad?arg={arg}")
        assert reply.status_code == 500
        assert message in reply.text, reply.text
    assert server.get("/api?key=after&rate=1&burst=1").status_code == 200
