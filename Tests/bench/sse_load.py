#!/usr/bin/env python3
"""Server-sent events fan-out for `make bench`: opens many event streams on one channel,
measures the server's RSS per stream, then has the server broadcast bursts of messages and
counts the events every stream receives. Raw asyncio sockets that count event ends in whole
reads, so the client does little per event; its own CPU time is reported next to the server's,
so a run where the client was the limit shows it. Loopback only, bounded in time.

  sse_load.py HOST:PORT --pid PID [--streams 10000] [--messages 100] [--rounds 3]

The server runs Tests/bench/run.sh's SSE app: GET /sse joins the channel "bench", GET
/fanout?n=N broadcasts N 64-byte messages on it.
"""
import argparse
import asyncio
import json
import os
import resource
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stream:
    """One event stream; `events` counts blank lines, the end of each event."""

    def __init__(self):
        self.events = 0
        self.tail = b""

    async def open(self, host, port):
        self.reader, self.writer = await asyncio.open_connection(host, port)
        self.writer.write(f"GET /sse HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream refused: {head[:60]!r}")
        self.task = asyncio.ensure_future(self.read())

    async def read(self):
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            # Chunked framing puts "\r\n" between chunks; events end with "\n\n" inside them.
            joined = self.tail + data
            self.events += joined.count(b"\n\n")
            self.tail = joined[-1:]


async def request(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    body = await reader.read()
    writer.close()
    return body


async def run(args):
    host, port = args.address.split(":")
    port = int(port)
    before = rss_kib(args.pid)
    streams = []
    started = time.monotonic()
    for start in range(0, args.streams, 500):
        batch = [Stream() for _ in range(start, min(start + 500, args.streams))]
        await asyncio.gather(*(stream.open(host, port) for stream in batch))
        streams.extend(batch)
        if time.monotonic() - started > 120:
            break
    # Every stream got its "subscribed" event: all are in the channel.
    while sum(stream.events for stream in streams) < len(streams):
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    after = rss_kib(args.pid)
    rounds = []
    for _ in range(args.rounds):
        base = sum(stream.events for stream in streams)
        expected = base + len(streams) * args.messages
        server_cpu, client_cpu = cpu_seconds(args.pid), time.process_time()
        began = time.monotonic()
        await request(host, port, f"/fanout?n={args.messages}")
        deadline = began + 60
        while sum(stream.events for stream in streams) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - began
        delivered = sum(stream.events for stream in streams) - base
        server_cpu = cpu_seconds(args.pid) - server_cpu
        rounds.append({"seconds": round(elapsed, 3), "delivered": delivered,
                       "events_per_second": round(delivered / elapsed),
                       # What an event costs the server, whatever else the machine runs.
                       "events_per_cpu_second": round(delivered / max(server_cpu, 0.01)),
                       "server_cpu": round(server_cpu / elapsed, 2),
                       "client_cpu": round((time.process_time() - client_cpu) / elapsed, 2)})
    for stream in streams:
        stream.task.cancel()
        stream.writer.close()
    best = max(rounds, key=lambda r: r["events_per_second"])
    return {"streams": len(streams), "messages": args.messages, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_stream": round((after - before) / max(1, len(streams)), 2), "rounds": rounds,
            "events_per_second": best["events_per_second"],
            "lost": len(streams) * args.messages * args.rounds - sum(r["delivered"] for r in rounds)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--streams", type=int, default=10000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < args.streams + 100:
        raise SystemExit(f"sse_load: the hard limit on open files ({hard}) is below {args.streams + 100}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, args.streams + 100), hard))
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
