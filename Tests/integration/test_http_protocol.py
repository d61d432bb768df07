"""HTTP/1.1 behaviour: an Upgrade that no upgrader takes."""
import pytest

APP = """
moonwire.options{ limits = { max_body_size = 1024, header_timeout = 1, keepalive_timeout = 2 } }
errors = 0
function OnError(conn, message) errors = errors + 1 end
function OnCommandGet(req, res)
  if req.path == "/sleep" then moonwire.sleep(1) end
  if req.path == "/errors" then res:send(tostring(errors)) return end
  res:send(req.method .. " " .. req.path .. " " .. #req.body .. " " .. req.body)
end
function OnCommandOther(req, res) OnCommandGet(req, res) end
"""


@pytest.fixture
def server(moonwire):
    return moonwire(APP, threads=1)


def test_upgrade_that_is_not_made_keeps_http(server):
    """An Upgrade no upgrader takes (first request, then a later one) is answered as HTTP/1.1
    and the requests behind it on the connection are answered too."""
    upgrade = b"Connection: Upgrade\r\nUpgrade: %s\r\n"
    reply = server.raw(
        b"GET /u1 HTTP/1.1\r\nHost: x\r\n" + upgrade % b"foo" + b"\r\n"
        b"GET /u2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /u3 HTTP/1.1\r\nHost: x\r\n" + upgrade % b"h2c" + b"\r\n"
        b"GET /u4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", idle=5).data
    assert reply.count(b"HTTP/1.1 200 OK") == 4, reply
    assert reply.index(b"GET /u1") < reply.index(b"GET /u2") < reply.index(b"GET /u3") < reply.index(b"GET /u4")

