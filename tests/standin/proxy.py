"""HTTPS CONNECT proxy: reach a container app on its real-looking FQDN.

A client with `HTTPS_PROXY=http://127.0.0.1:N` asks `CONNECT <fqdn>:443`. The stand-in asks
its virtual-host resolvers (`app.hosts`) who serves that name, terminates TLS with a leaf
certificate for the name (issued by the stand-in's CA), and then either relays the decrypted
stream to a registered backend (e.g. a real MLflow on 127.0.0.1:5000, which then sees the
FQDN in its Host header exactly as behind ACA's ingress) or answers from the virtual host
itself. Names nobody serves are refused: the stand-in never tunnels to the internet.

A container app's FQDN is served request by request (`_AppHandler`): each request is parsed
(Content-Length or chunked body), checked by the built-in authentication layer when the app's
auth config enables it (easyauth.py; checked per request, so a config change applies to
connections already open), then answered by the layer, by the built-in answer, or forwarded to
the backend on a fresh upstream connection (`Connection: close`), bodies streamed both ways.
"""

from __future__ import annotations

import http.client
import http.server
import socket
import ssl
from dataclasses import dataclass
from typing import Callable, Iterator

from . import easyauth, easyauth_routes
from .app import StandinApp
from .tls import Tls

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business, never forwarded; Expect is
# answered here (100-continue) and Content-Length/Transfer-Encoding are re-framed.
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "expect", "content-length"}


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
    if vhost.handle is None:
        _AppHandler(conn, handler.client_address, vhost, app, host.strip("[]").lower())
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
            if not isinstance(payload, (bytes, bytearray)):   # a stream (a followed log): chunked
                self._stream(status, extra, payload)
                return
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

    def _stream(self, status: int, extra: dict, pieces: Iterator[bytes]) -> None:
        """Send `pieces` as they come, chunked; an empty piece is a tick with nothing to send, on
        which a client that has gone (Ctrl-C on a follow) ends the stream."""
        self.close_connection = True
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                elif _client_gone(self.connection):
                    return
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            return
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()


def _client_gone(conn: socket.socket) -> bool:
    """The client closed its side (readable with nothing to read: EOF, or a TLS close)."""
    import select

    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and not conn.recv(1)
    except (OSError, ValueError, ssl.SSLError):
        return True


class _AppHandler(http.server.BaseHTTPRequestHandler):
    """A container app's ingress, one parsed request at a time (keep-alive towards the client)."""

    protocol_version = "HTTP/1.1"
    server_version = "AzureStandinIngress/1.0"
    _AUTH_BODY_LIMIT = 1 << 20    # the layer's own routes take small forms only

    def __init__(self, request, client_address, vhost: VirtualHost, app: StandinApp, host: str) -> None:
        self.vhost, self.app, self.host = vhost, app, host
        super().__init__(request, client_address, None)

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    # -- request body ----------------------------------------------------------------------------
    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _has_body(self) -> bool:
        return self._chunked() or int(self.headers.get("Content-Length") or 0) > 0

    def _body(self) -> Iterator[bytes]:
        """The request body, de-framed, in pieces; marks it consumed once fully read."""
        if self._chunked():
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass                      # trailer fields end with an empty line
                    break
                yield from self._exactly(size)
                self.rfile.readline(3)
        else:
            yield from self._exactly(int(self.headers.get("Content-Length") or 0))
        self._consumed = True

    def _exactly(self, length: int) -> Iterator[bytes]:
        while length > 0:
            data = self.rfile.read(min(65536, length))
            if not data:
                raise ConnectionError("client closed the connection inside the body")
            length -= len(data)
            yield data

    # -- one request -----------------------------------------------------------------------------
    def _serve(self) -> None:
        self._consumed = not self._has_body()
        # Routed per request, like ACA's ingress: a client's kept-alive connection reaches the
        # app's current backend (a later set_app_endpoint), not the one it first connected to.
        self.vhost = resolve(self.app, self.host, 443) or self.vhost
        headers = {k.lower(): v for k, v in self.headers.items()}
        cfg = easyauth.settings_for(self.app, self.host)
        add: dict = {}
        if cfg is not None:
            path = self.path.split("?", 1)[0]
            if path == cfg.prefix or path.startswith(cfg.prefix + "/"):
                body = b"".join(self._body()) if self._has_body() and self._small() else b""
                decision = easyauth_routes.handle(self.app, cfg, self.command, self.path, headers, body)
            else:
                decision = easyauth.decide(self.app, cfg, self.command, self.path, headers)
            if not decision.forward:
                self._answer(decision.status, decision.headers, decision.body)
                return
            add = decision.add
        self._forward(cfg is not None, add)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def _small(self) -> bool:
        return self._chunked() or int(self.headers.get("Content-Length") or 0) <= self._AUTH_BODY_LIMIT

    def _answer(self, status: int, headers: dict, body: bytes) -> None:
        if not self._consumed:
            self.close_connection = True   # an unread body: the connection cannot carry another request
        self.send_response(status)
        for name, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                self.send_header(name, item)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, gated: bool, add: dict) -> None:
        # With the layer on, the caller's own X-MS-CLIENT-PRINCIPAL*/X-MS-TOKEN-* never reach the
        # app: "External requests aren't allowed to set these headers" (container-apps/authentication).
        items = [(k, v) for k, v in self.headers.items()
                 if not (gated and easyauth.is_reserved(k))]
        if self.vhost.backend is None:
            b"".join(self._body())  # drained: a respond hook answers from the path and headers alone
            fields = {k.lower(): v for k, v in items} | {k.lower(): v for k, v in add.items()}
            status, text = self.vhost.respond(self.command, self.path, fields)
            self._answer(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode())
            return
        try:
            upstream = socket.create_connection(self.vhost.backend, timeout=10)
        except OSError:
            self._answer(502, {"Content-Type": "text/plain; charset=utf-8"}, b"upstream connect error")
            return
        with upstream:
            upstream.settimeout(300)
            self._send_upstream(upstream, items, add)
            response = http.client.HTTPResponse(upstream, method=self.command)
            response.begin()
            self._relay_response(response)

    def _send_upstream(self, upstream: socket.socket, items: list, add: dict) -> None:
        lines = [f"{self.command} {self.path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in items if k.lower() not in _HOP]
        lines += [f"{k}: {v}" for k, v in add.items()]
        if self._chunked():
            lines.append("Transfer-Encoding: chunked")
        elif self._has_body():
            lines.append(f"Content-Length: {int(self.headers['Content-Length'])}")
        lines.append("Connection: close")
        upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in self._body():
            upstream.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if self._chunked() else piece)
        if self._chunked():
            upstream.sendall(b"0\r\n\r\n")

    def _relay_response(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        for name, value in response.getheaders():
            # A HEAD's or 304's Content-Length describes the entity, not this (empty) body: keep it.
            if name.lower() not in _HOP or (no_body and name.lower() == "content-length"):
                self.send_header(name, value)
        if no_body:
            self.end_headers()
            return
        if response.length is not None:
            self.send_header("Content-Length", str(response.length))
        elif response.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True            # delimited by the upstream closing
            self.send_header("Connection", "close")
        self.end_headers()
        while True:
            piece = response.read(65536)
            if not piece:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if response.chunked else piece)
        if response.chunked:
            self.wfile.write(b"0\r\n\r\n")
