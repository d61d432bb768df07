"""A WebSocket client by hand, for the tests that need what Python's websockets will not do:
raw upgrades with a small receive window, and frames built byte by byte."""
import asyncio
import base64
import os
import socket


def run(coroutine):
    """Runs a client scenario written with Python's asyncio websockets, 30 s at most."""
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def url(server, path="/"):
    return server.url.replace("http://", "ws://") + path


def raw_upgrade(server, extra="", receive_buffer=None, answer=False):
    """An upgraded raw socket; `receive_buffer` (bytes) is set before connecting, so the window
    the client offers stays that small. With `answer`, (socket, the 101's head as bytes)."""
    s = socket.socket()
    s.settimeout(5)
    if receive_buffer:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    s.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(4096)
    assert response.startswith(b"HTTP/1.1 101")
    assert response.endswith(b"\r\n\r\n"), "the server spoke before the client"
    return (s, response) if answer else s


def read_frame(sock):
    """One server frame (unmasked, as RFC 6455 requires of servers): (first byte, payload)."""
    def exactly(count):
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data
    first, length = exactly(2)
    length &= 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    return first, exactly(length)


def masked(opcode, payload, fin=True, rsv=0):
    """A client frame: masked, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = bytes([(0x80 if fin else 0) | rsv | opcode, 0x80 | length])
    elif length < 65536:
        head = bytes([(0x80 if fin else 0) | rsv | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([(0x80 if fin else 0) | rsv | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
    return head + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")


def split_frame(data):
    """The first whole server frame at the start of `data` (bytes): (first byte, payload, its
    length in `data`), or None while it is incomplete."""
    if len(data) < 2:
        return None
    length, offset = data[1] & 0x7F, 2
    if length == 126:
        length, offset = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        length, offset = int.from_bytes(data[2:10], "big"), 10
    if len(data) < offset + length:
        return None
    return data[0], bytes(data[offset:offset + length]), offset + length
