"""Upstream servers for the moonwire.http tests, on free loopback ports, each in its own threads
(daemon threads: nothing here outlives the test session), stopped by `close()`.

- `HTTP1Upstream(tls=None)`: HTTP/1.1 with keep-alive (plain, or TLS when given an ssl server
  context). It counts the connections it accepted, so tests can see reuse. Paths:
  `/echo...` answers JSON {method, path, headers, body, connection, protocol} with two
  Set-Cookie and two X-Multi headers; `/status/N`; `/redirect/N` (302 to /redirect/N-1, then
  to /echo); `/see-other` (303 to /echo); `/absolute` (302 to this upstream's full URL of /echo);
  `/big/N` (N bytes with a Content-Length); `/stream/N` (N bytes chunked, written as long as the
  client reads); `/never` (reads the request and never answers); `/slow/S` (answers after S s).
- `HTTP2Upstream(context)`: HTTP/2 over TLS (ALPN h2 only) with the `h2` library; every request
  gets JSON {method, path, protocol: "HTTP/2"}.
"""
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import h2.config
import h2.connection
import h2.events

from harness import HOST


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.connection_id = self.server.connections

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._answer()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer(self):
        body = self._body()
        path = self.path
        parts = path.strip("/").split("/")
        if path.startswith("/echo"):
            headers = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = headers[key] + ", " + value if key in headers else value
            payload = json.dumps({"method": self.command, "path": path, "headers": headers,
                                  "body": body.decode("latin-1"), "connection": self.connection_id,
                                  "protocol": self.request_version}).encode()
            self._send(200, payload, [("Content-Type", "application/json"), ("X-Multi", "one"),
                                      ("X-Multi", "two"), ("Set-Cookie", "a=1; Path=/"),
                                      ("Set-Cookie", "b=2, with comma")])
        elif parts[0] == "status":
            self._send(int(parts[1]), f"status {parts[1]}".encode())
        elif parts[0] == "redirect":
            left = int(parts[1])
            target = f"/redirect/{left - 1}" if left > 1 else "/echo/redirected"
            self._send(302, b"moved", [("Location", target)])
        elif parts[0] == "see-other":
            self._send(303, b"see other", [("Location", "/echo/after-303")])
        elif parts[0] == "absolute":
            self._send(302, b"moved", [("Location", f"{self.server.base_url}/echo/absolute")])
        elif parts[0] == "big":
            self._send(200, b"x" * int(parts[1]))
        elif parts[0] == "stream":
            self._stream(int(parts[1]))
        elif parts[0] == "never":
            self.server.stopped.wait(30)
            self.close_connection = True
        elif parts[0] == "slow":
            time.sleep(float(parts[1]))
            self._send(200, b"slow answer")
        else:
            self._send(404, b"not found")

    def _stream(self, total):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"y" * 65536
        sent = 0
        try:
            while sent < total:
                piece = chunk[:min(len(chunk), total - sent)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading and closed: what the cap is for
        self.server.streamed = sent
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a hundred connects at once would overflow it,
    # and the dropped SYNs come back only after a retransmit second or more.
    request_queue_size = 1024


class HTTP1Upstream:
    def __init__(self, tls=None):
        self.server = _Server((HOST, 0), _Handler)
        self.server.daemon_threads = True
        self.server.lock = threading.Lock()
        self.server.connections = 0
        self.server.streamed = 0
        self.server.stopped = threading.Event()
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{HOST}:{self.port}"
        self.server.base_url = self.url
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def connections(self):
        with self.server.lock:
            return self.server.connections

    @property
    def streamed(self):
        return self.server.streamed

    def close(self):
        self.server.stopped.set()
        self.server.shutdown()
        self.server.server_close()


class HTTP2Upstream:
    def __init__(self, context):
        context.set_alpn_protocols(["h2"])
        self.context = context
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"https://{HOST}:{self.port}"
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        try:
            sock.settimeout(30)
            tls = self.context.wrap_socket(sock, server_side=True)
            connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            connection.initiate_connection()
            tls.sendall(connection.data_to_send())
            requests = {}
            while True:
                data = tls.recv(65536)
                if not data:
                    return
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        requests[event.stream_id] = dict((k.decode() if isinstance(k, bytes) else k,
                                                          v.decode() if isinstance(v, bytes) else v)
                                                         for k, v in event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers = requests.pop(event.stream_id, {})
                        body = json.dumps({"method": headers.get(":method"), "path": headers.get(":path"),
                                           "protocol": "HTTP/2"}).encode()
                        connection.send_headers(event.stream_id, [(":status", "200"),
                                                                  ("content-type", "application/json"),
                                                                  ("content-length", str(len(body)))])
                        connection.send_data(event.stream_id, body, end_stream=True)
                tls.sendall(connection.data_to_send())
        except (OSError, ssl.SSLError):
            pass
        finally:
            sock.close()

    def close(self):
        self._closed = True
        self.listener.close()


class RawUpstream:
    """An HTTP/1.1 upstream that answers with the bytes a test gives, per request path, so the
    answers can be what no well-behaved server sends (a bare CR in a field, a body that ends
    with the connection, hop-by-hop fields). It keeps every request's raw head and body.
    `answers` maps a path to bytes, or to a callable(sock, head, data) that reads the body
    itself (`data`: what arrived after the head) and writes its answer; the connection closes
    after each answer unless the bytes hold `Content-Length`."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        conn.settimeout(10)
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                path = head.split(b" ")[1].decode()
                answer = self.answers.get(path.split("?")[0], b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                if callable(answer):
                    with self.lock:
                        self.requests.append((head.decode("latin-1"), b""))
                    answer(conn, head, data)
                    return
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                chunks = [data]
                have = len(data)
                while have < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    chunks.append(chunk)
                    have += len(chunk)
                data = b"".join(chunks)
                body, data = data[:length], data[length:]
                with self.lock:
                    self.requests.append((head.decode("latin-1"), body))
                conn.sendall(answer)
                if b"content-length" not in answer.lower():
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stopped.set()
        self.sock.close()


class WebSocketUpstream:
    """A WebSocket server (the `websockets` library): a chat where every text message goes to
    every client connected, and `/echo` which echoes. It answers with the subprotocol "chat"
    when offered and records the paths and Host it was asked for."""

    def __init__(self):
        from websockets.sync.server import serve
        self.clients = set()
        self.lock = threading.Lock()
        self.seen = []
        self.server = serve(self._handle, HOST, 0, compression="deflate",
                            select_subprotocol=lambda _, offered: "chat" if "chat" in offered else None)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, ws):
        with self.lock:
            self.seen.append((ws.request.path, ws.request.headers.get("Host"), ws.request.headers.get("X-Forwarded-For")))
            self.clients.add(ws)
        try:
            for message in ws:
                if ws.request.path.startswith("/echo"):
                    ws.send(message)
                    continue
                with self.lock:
                    peers = list(self.clients)
                for peer in peers:
                    try:
                        peer.send(message)
                    except Exception:
                        pass
        finally:
            with self.lock:
                self.clients.discard(ws)

    def close(self):
        self.server.shutdown()


class NginxUpstream:
    """Debian's nginx serving the folder `root` on a free loopback port (static files, with
    ranges and validators as nginx does them), in a prefix of its own; stopped by `close()`."""

    def __init__(self, root, prefix):
        import os
        import shutil
        import subprocess
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            raise RuntimeError("nginx is not installed (Tests/tools/setup.sh installs it)")
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)
        listener = socket.socket()
        listener.bind((HOST, 0))
        self.port = listener.getsockname()[1]
        listener.close()
        # As root, nginx's worker would drop to nobody, who cannot enter pytest's folders.
        user = "user root root;" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/octet-stream bin; text/plain txt; }}
    server {{ listen {HOST}:{self.port}; root {root}; }}
}}
""")
        self.process = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                                         str(prefix / "logs" / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://{HOST}:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("nginx did not start")

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=10)
