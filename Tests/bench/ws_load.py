#!/usr/bin/env python3
"""WebSocket load client for `make bench`: echo throughput over many connections, and the
server's memory per idle connection. Raw asyncio sockets with minimal framing, so the client
costs little next to the server. Loopback only; every phase is bounded in time.

  ws_load.py echo HOST:PORT [--connections 100] [--seconds 10] [--size 20]
  ws_load.py idle HOST:PORT --pid PID [--connections 10000]
"""
import argparse
import asyncio
import base64
import json
import os
import resource
import struct
import time


async def handshake(host, port):
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    response = await reader.readuntil(b"\r\n\r\n")
    if not response.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {response[:40]!r}")
    return reader, writer


def text_frame(payload):
    mask = b"\x00\x00\x00\x00"  # a zero mask is a valid mask and keeps the client cheap
    return bytes([0x81, 0x80 | len(payload)]) + mask + payload


async def echo_worker(host, port, payload, deadline, counts):
    reader, writer = await handshake(host, port)
    frame = text_frame(payload)
    expected = 2 + len(payload)
    while time.monotonic() < deadline:
        writer.write(frame)
        await reader.readexactly(expected)
        counts[0] += 1
    writer.close()


async def echo(args):
    host, port = args.address.split(":")
    payload = b"x" * args.size
    deadline = time.monotonic() + args.seconds
    counts = [0]
    started = time.monotonic()
    await asyncio.gather(*(echo_worker(host, int(port), payload, deadline, counts) for _ in range(args.connections)))
    elapsed = time.monotonic() - started
    return {"connections": args.connections, "message_bytes": args.size, "seconds": round(elapsed, 2),
            "messages": counts[0], "messages_per_second": round(counts[0] / elapsed)}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def idle(args):
    host, port = args.address.split(":")
    before = rss_kib(args.pid)
    sockets = []
    started = time.monotonic()
    for start in range(0, args.connections, 500):
        batch = await asyncio.gather(*(handshake(host, int(port)) for _ in range(start, min(start + 500, args.connections))))
        sockets.extend(batch)
        if time.monotonic() - started > 120:
            break
    await asyncio.sleep(1)
    after = rss_kib(args.pid)
    for _, writer in sockets:
        writer.close()
    return {"connections": len(sockets), "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_connection": round((after - before) / max(1, len(sockets)), 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["echo", "idle"])
    parser.add_argument("address")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 100)), hard))
    result = asyncio.run(echo(args) if args.mode == "echo" else idle(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
