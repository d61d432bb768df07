"""HTTP/2 clients that never read their answers, on both engines (issue 27): streamed answers
wait for the client instead of piling up in the server, so its memory stays bounded, and other
clients are served meanwhile. The client opens windows of 2^31-1 bytes, so only the socket and
the server's own bounds hold the answers back. Loopback only."""
import socket
import time

import h2.config
import h2.connection
import h2.settings
import httpx
import pytest

from harness import HOST

STREAMS = 64
CHUNK = 16 * 1024
CHUNKS = 64     # a streamed answer of 1 MiB per stream, 64 MiB in all

APP = f"""
moonwire.options{{ limits = {{ max_body_size = 1024 }} }}
local chunk = string.rep("x", {CHUNK})
moonwire.get("/big", function(req, res)
  for i = 1, {CHUNKS} do res:write(chunk) end
  res:finish()
end)
moonwire.get("/hello", function(req, res) res:send("hello") end)
"""


@pytest.fixture(params=["nio", "nghttp2"])
def server(request, moonwire):
    return moonwire(f'moonwire.options{{ http2 = {{ engine = "{request.param}" }} }}\n' + APP, threads=1)


def unread_client(port):
    """Opens STREAMS streams asking for /big, with every window at its largest, and reads nothing."""
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    connection.initiate_connection()
    connection.increment_flow_control_window(2**31 - 1 - 65535)
    for index in range(STREAMS):
        connection.send_headers(1 + 2 * index, [(":method", "GET"), (":path", "/big"), (":scheme", "http"),
                                                (":authority", f"{HOST}:{port}")], end_stream=True)
    sock.sendall(connection.data_to_send())
    return sock


def test_a_client_that_reads_nothing_holds_back_only_its_streams(server):
    before = server.rss_mib()
    sock = unread_client(server.port)
    try:
        time.sleep(2)
        grown = server.rss_mib() - before
        # 64 MiB of answers were asked for; a socket's worth and each stream's bounded queue
        # may wait in the server.
        assert grown < 24, f"RSS grew by {grown:.1f} MiB for a client that reads nothing"
        with httpx.Client(http2=True, http1=False, timeout=5) as client:
            response = client.get(f"{server.url}/hello")
        assert response.status_code == 200 and response.text == "hello"
    finally:
        sock.close()
    # The connection's streams end with it; the server goes on.
    with httpx.Client(http2=True, http1=False, timeout=5) as client:
        assert client.get(f"{server.url}/hello").text == "hello"
