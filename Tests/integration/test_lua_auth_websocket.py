"""Authentication of WebSocket upgrades (docs/authentication.md): an upgrade without, with
wrong or with failing credentials is refused with 401 and the challenge before OnHandshake, one
with good credentials reaches OnHandshake with req.user; `websocket = false` leaves upgrades to
OnHandshake."""
import asyncio

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from test_lua_auth import basic
from websocket_client import url


WS_APP = r"""
moonwire.options{authentication = {enabled = true, realm = "ws"}}
function OnAuthentication(req, user, password)
  if user == "boom" then error("no") end
  moonwire.sleep(0.05)
  return user == "ws" and password == "pw"
end
function OnHandshake(req, res) res:header("X-User", req.user) end
function OnMessage(ws, text) ws:send("echo " .. text) end
"""


def test_a_websocket_upgrade_needs_credentials(moonwire):
    server = moonwire(WS_APP)

    async def scenario():
        for headers in ({}, {"Authorization": basic("ws", "nope")}, {"Authorization": basic("boom", "x")}):
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(url(server), additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 401
            assert refused.value.response.headers["WWW-Authenticate"] == 'Basic realm="ws", charset="UTF-8"'
        async with websockets.connect(url(server), additional_headers={"Authorization": basic("ws", "pw")}) as ws:
            assert ws.response.headers["X-User"] == "ws"
            await ws.send("hi")
            assert await ws.recv() == "echo hi"

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_websocket_false_leaves_upgrades_to_on_handshake(moonwire):
    server = moonwire(WS_APP.replace('realm = "ws"', 'realm = "ws", websocket = false'))

    async def scenario():
        async with websockets.connect(url(server)) as ws:
            await ws.send("open")
            assert await ws.recv() == "echo open"

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert server.get("/").status_code == 401
