"""The default scripts/ and www/ that `make run` serves work as a first-time user sees them."""
import asyncio
import json

import websockets

from harness import REPO, run_cli


def test_default_scripts_pass_check():
    result = run_cli("check", "--scripts", REPO / "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_app_pages_and_chat(moonwire):
    server = moonwire(app=REPO / "scripts", www=REPO / "www")
    assert "Moonwire" in server.get("/").text
    assert server.get("/hello").status_code == 200
    assert "unix" in server.get("/api/time").json()
    assert "WebSocket" in server.get("/chat.html").text

    async def chat():
        url = server.url.replace("http://", "ws://") + "/chat"
        async with websockets.connect(url) as alice, websockets.connect(url) as bob:
            # "you are ..." comes after ws:subscribe, so once both have it both are in the room.
            # Join notices may arrive in either order across event loops: skip system lines.
            await alice.recv()
            await bob.recv()
            await alice.send("hello bob")
            while True:
                message = json.loads(await bob.recv())
                if not message.get("system"):
                    return message
    message = asyncio.run(asyncio.wait_for(chat(), 20))
    assert message["text"] == "hello bob" and message["from"].startswith("guest-")
