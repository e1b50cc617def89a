"""HTTPS CONNECT proxy: reach a container app on its real-looking FQDN.

A client with `HTTPS_PROXY=http://127.0.0.1:N` asks `CONNECT <fqdn>:443`. The stand-in asks
its virtual-host resolvers (`app.hosts`) who serves that name, terminates TLS with a leaf
certificate for the name (issued by the stand-in's CA), and then either relays the decrypted
stream to a registered backend (e.g. a real MLflow on 127.0.0.1:5000, which then sees the
FQDN in its Host header exactly as behind ACA's ingress) or answers from the virtual host
itself. Names nobody serves are refused: the stand-in never tunnels to the internet.
"""

from __future__ import annotations

import http.server
import select
import socket
import ssl
from dataclasses import dataclass
from typing import Callable

from .app import StandinApp
from .tls import Tls


@dataclass
class VirtualHost:
    """What a resolver returns for a name it serves."""
    respond: Callable[[str, str, dict], tuple[int, str]] | None = None   # (method, path, headers) -> (status, text)
    backend: tuple[str, int] | None = None
    # A full HTTP service (a blob endpoint): (method, path with query, headers, body) -> (status, body, headers)
    handle: Callable[[str, str, dict, bytes], tuple[int, bytes, dict]] | None = None


def tunnel(handler: http.server.BaseHTTPRequestHandler, app: StandinApp, tls: Tls) -> None:
    handler.close_connection = True
    host, _, port = handler.path.rpartition(":")
    vhost = resolve(app, host.strip("[]").lower(), int(port) if port.isdigit() else 443)
    if vhost is None:
        body = f"The Azure stand-in does not serve {handler.path}.".encode()
        handler.send_response(502, "Bad Gateway")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return
    handler.send_response(200, "Connection Established")
    handler.end_headers()
    try:
        conn = tls.context.wrap_socket(handler.connection, server_side=True)
    except (ssl.SSLError, OSError):
        return
    if vhost.backend is not None:
        _relay(conn, vhost.backend)
    else:
        _VirtualHostHandler(conn, handler.client_address, vhost)


def resolve(app: StandinApp, host: str, port: int) -> VirtualHost | None:
    if port != 443:
        return None
    for resolver in app.hosts:
        with app.store.lock:
            app.store.settle()
            vhost = resolver(host)
        if vhost is not None:
            return vhost
    return None


def _relay(conn: ssl.SSLSocket, backend: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(backend, timeout=10)
    except OSError:
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return
    with upstream:
        conn.setblocking(True)
        sockets = [conn, upstream]
        while True:
            # TLS may hold decrypted bytes that select() cannot see: drain them first.
            readable = [conn] if conn.pending() else select.select(sockets, [], [], 60)[0]
            if not readable:
                return
            for source in readable:
                target = upstream if source is conn else conn
                try:
                    data = source.recv(65536)
                except (OSError, ssl.SSLError):
                    return
                if not data:
                    return
                target.sendall(data)


class _VirtualHostHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureStandinIngress/1.0"

    def __init__(self, request, client_address, vhost: VirtualHost) -> None:
        self.vhost = vhost
        super().__init__(request, client_address, None)

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.vhost.handle is not None:
            status, payload, extra = self.vhost.handle(self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            if "content-length" not in {name.lower() for name in extra}:  # a HEAD states the blob's size
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        status, text = self.vhost.respond(self.command, self.path, headers)
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve
