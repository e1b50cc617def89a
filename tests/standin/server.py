"""The HTTPS server: one threaded listener for ARM, the identity endpoint, the control API
and the CONNECT proxy.

Each connection is sniffed before TLS: a TLS ClientHello (first byte 0x16) is wrapped and
served as HTTPS; anything else is read as plain HTTP, where only CONNECT (the proxy) is
served. One port therefore serves `https://127.0.0.1:N` and `HTTPS_PROXY=http://127.0.0.1:N`.
"""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import ssl
import uuid
from urllib.parse import parse_qsl, urlsplit

from . import proxy
from .app import StandinApp, dumps
from .arm import DropConnection, Request, Response
from .tls import Tls


def drop_connection(handler: http.server.BaseHTTPRequestHandler) -> None:
    """Close the client's connection without an answer (the "dropped connection" fault)."""
    handler.close_connection = True
    try:
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class ThreadedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """What every stand-in listener shares: a thread per connection, quiet about clients that
    go away, tuned sockets."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    socket_timeout = 60

    def tune(self, request: socket.socket) -> None:
        request.settimeout(self.socket_timeout)
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_error(self, request, client_address) -> None:
        pass    # a client that went away mid-request is not the server's error


class StandinServer(ThreadedServer):
    def __init__(self, address: tuple[str, int], tls: Tls) -> None:
        super().__init__(address, ArmRequestHandler)
        self.tls = tls
        self.app: StandinApp | None = None

    def finish_request(self, request: socket.socket, client_address) -> None:
        self.tune(request)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":
            try:
                request = self.tls.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            ArmRequestHandler(request, client_address, self, secure=True)
        elif first:
            ArmRequestHandler(request, client_address, self, secure=False)


class ArmRequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureStandin/1.0"

    def __init__(self, request, client_address, server, secure: bool = True) -> None:
        self.secure = secure
        super().__init__(request, client_address, server)

    def log_message(self, format, *args) -> None:  # noqa: A002 - signature from the base class
        pass

    def do_CONNECT(self) -> None:
        if self.secure:
            self._send(405, {"error": {"code": "MethodNotAllowed", "message": "CONNECT goes to the plain port."}})
            return
        proxy.tunnel(self, self.server.app, self.server.tls)

    def _serve(self) -> None:
        if not self.secure:
            self._send(400, {"error": {"code": "HttpsRequired", "message": "Use https:// (or CONNECT)."}})
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        req = Request(method=self.command, path=_normalize(parts.path),
                      query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                      headers={k.lower(): v for k, v in self.headers.items()},
                      body=_decode(raw, self.headers.get("Content-Type", "")), base_url=f"https://{host}",
                      raw_query=parts.query)
        try:
            response = self.server.app.handle(req)
        except DropConnection:
            drop_connection(self)
            return
        self._send(response.status, response.body, response.headers)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _send(self, status: int, body, headers: dict | None = None) -> None:
        payload = b"" if body is None or self.command == "HEAD" else (
            body if isinstance(body, bytes) else dumps(body))
        self.send_response(status)
        request_id = str(uuid.uuid4())
        self.send_header("x-ms-request-id", request_id)
        self.send_header("x-ms-correlation-request-id", self.headers.get("x-ms-client-request-id", request_id))
        if payload and "content-type" not in {name.lower() for name in headers or {}}:   # HTML: entra/signin.py
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


def send_json(handler: http.server.BaseHTTPRequestHandler, response: Response, payload: bytes) -> None:
    """Write a JSON response (already encoded) for a data-plane listener."""
    handler.send_response(response.status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    for name, value in response.headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if payload and handler.command != "HEAD":
        handler.wfile.write(payload)


def _normalize(path: str) -> str:
    # Percent-escapes stay until the router has split the path (a name may contain "%2F").
    # azure-mgmt-authorization formats "/{scope}/providers/..." with a scope that itself starts
    # with "/", so paths arrive as "//subscriptions/...".
    while "//" in path:
        path = path.replace("//", "/")
    return path


def _decode(raw: bytes, content_type: str):
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
