"""A registry's login server: the front of ACR's data plane, in front of a real registry.

ACR serves three things on `https://<login server>`: the token exchange (`/oauth2/exchange`),
the token realm (`/oauth2/token`) and the distribution API (`/v2/`). The front serves the first
two itself (registry_tokens.py) and relays `/v2/` to a real distribution registry started in
token-auth mode (tests/services.py `start_token_registry`) whose realm is this front's
`/oauth2/token`, whose service is the login server and which trusts the front's signing
certificate. A registry resource created while a backend is attached reports this front's
`127.0.0.1:<port>` as its `properties.loginServer`, so the product and the Docker engine reach
it exactly as they would reach `<name>.azurecr.io` (the engine treats 127.0.0.0/8 as an insecure
registry: it speaks TLS without verifying the certificate; the product verifies it through
REQUESTS_CA_BUNDLE).

Every request goes through the stand-in's fault queue and request log (`serve_data_plane`).
The relay streams bodies in both directions (layers are hundreds of MB) and keeps one backend
connection per client connection.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import socket
import ssl
import threading
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import trustme

from . import registry_tokens
from .server import ThreadedServer, drop_connection, send_json
from .arm import DropConnection, Request, Response

if TYPE_CHECKING:
    from .app import StandinApp
    from .tls import Tls

# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus Expect: this side
# already answered `100 Continue`.
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "expect"}
_COPY = 1 << 16


class RegistryFront:
    """One login server. `info()` says how to start the registry behind it."""

    def __init__(self, app: "StandinApp", tls: "Tls", workdir: str, host: str = "127.0.0.1") -> None:
        self.app = app
        self.tls = tls
        # distribution v2.8 verifies RS256 tokens against a certificate bundle: an RSA signer.
        self.signer = trustme.CA(key_type=trustme.KeyType.RSA, organization_name="Azure stand-in ACR token signer")
        self.bundle_path = os.path.join(workdir, "registry-token-signer.pem")
        self.signer.cert_pem.write_to_path(self.bundle_path)
        self.server = _FrontServer((host, 0), self)
        self.login_server = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="standin-registry-front", daemon=True)
        self._thread.start()

    def info(self) -> dict:
        return {"login_server": self.login_server, "realm": f"https://{self.login_server}/oauth2/token",
                "service": self.login_server, "issuer": registry_tokens.ISSUER, "rootcertbundle": self.bundle_path,
                "backend": self.app.store.registry_backend}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign_registry_token(self, *, subject: str, access: list[dict], ttl: int) -> str:
        now = int(time.time())
        claims = {"iss": registry_tokens.ISSUER, "sub": subject, "aud": self.login_server, "iat": now,
                  "nbf": now - 30, "exp": now + ttl, "jti": uuid.uuid4().hex, "access": access}
        return registry_tokens.sign_rs256(key_pem=self.signer.private_key_pem.bytes(),
                                          cert_pem=self.signer.cert_pem.bytes(), claims=claims)


class _FrontServer(ThreadedServer):
    socket_timeout = 300  # image layers take a while

    def __init__(self, address: tuple[str, int], front: RegistryFront) -> None:
        super().__init__(address, _FrontHandler)
        self.front = front

    def finish_request(self, request: socket.socket, client_address) -> None:
        self.tune(request)
        try:
            request = self.front.tls.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        _FrontHandler(request, client_address, self)


class _FrontHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureStandinRegistry/1.0"

    def log_message(self, format, *args) -> None:  # noqa: A002 - signature from the base class
        pass

    @property
    def front(self) -> RegistryFront:
        return self.server.front

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        req = Request(method=self.command, path=parts.path, query=dict(parse_qsl(parts.query)),
                      headers={k.lower(): v for k, v in self.headers.items()}, body=None,
                      base_url=f"https://{self.front.login_server}", raw_query=parts.query)
        try:
            if parts.path.startswith("/oauth2/"):
                req.body = self._small_body()
                response = self.front.app.serve_data_plane(req, self._token_endpoint)
                self._send(response)
            elif parts.path == "/v2" or parts.path.startswith("/v2/"):
                relayed: list[bool] = []

                def relay(request: Request) -> Response:
                    relayed.append(True)
                    return self._relay(request)

                response = self.front.app.serve_data_plane(req, relay)
                if not relayed:  # a fault answered instead of the registry
                    self._discard_body()
                    self._send(response)
            else:
                self._send(registry_tokens.registry_error(404, "NOT_FOUND", f"{parts.path} is not served here."))
        except DropConnection:
            drop_connection(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    # -- token endpoints ---------------------------------------------------------------------------
    def _token_endpoint(self, req: Request) -> Response:
        app = self.front.app
        if req.path.rstrip("/") == "/oauth2/exchange" and req.method == "POST":
            return registry_tokens.exchange(app, self.front.login_server, req)
        if req.path.rstrip("/") == "/oauth2/token" and req.method in ("GET", "POST"):
            return registry_tokens.token(app, self.front, req)
        return registry_tokens.registry_error(404, "NOT_FOUND", f"{req.method} {req.path} is not served here.")

    def _small_body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8", errors="replace") if length else ""

    def _send(self, response: Response) -> None:
        send_json(self, response, b"" if response.body is None else json.dumps(response.body).encode())

    # -- the relay to the real registry ------------------------------------------------------------
    def _relay(self, req: Request) -> Response:
        backend = self.front.app.store.registry_backend
        if backend is None:
            self._discard_body()
            response = registry_tokens.registry_error(503, "UNAVAILABLE", "No registry is attached to this "
                                                      "login server (control operation attach_registry).")
            self._send(response)
            return response
        conn = self._backend(backend)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP:
                    conn.putheader(name, value)
            if self._chunked_request():
                conn.putheader("Transfer-Encoding", "chunked")
            # distribution builds absolute Location URLs from Host and this header.
            conn.putheader("X-Forwarded-Proto", "https")
            conn.endheaders()
            self._copy_request_body(conn)
            upstream = conn.getresponse()
        except OSError:
            self._backend_conn = None
            self.close_connection = True
            response = registry_tokens.registry_error(502, "UNAVAILABLE", f"The registry at {backend} did not answer.")
            self._send(response)
            return response
        self._copy_response(upstream)
        return Response(upstream.status)

    def _backend(self, backend: str) -> http.client.HTTPConnection:
        conn = getattr(self, "_backend_conn", None)
        if conn is None or getattr(self, "_backend_addr", None) != backend:
            host, _, port = backend.rpartition(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=300)
            self._backend_conn, self._backend_addr = conn, backend
        return conn

    def _chunked_request(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _copy_request_body(self, conn: http.client.HTTPConnection) -> None:
        if self._chunked_request():
            # Relay the chunked framing as it comes, so a layer is never held in memory.
            while True:
                line = self.rfile.readline(1024)
                conn.send(line)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the blank line
                        trailer = self.rfile.readline(8192)
                        conn.send(trailer)
                        if trailer in (b"\r\n", b"\n", b""):
                            return
                self._copy_exact(size + 2, conn.send)  # the data and its CRLF
        else:
            self._copy_exact(int(self.headers.get("Content-Length") or 0), conn.send)

    def _copy_exact(self, remaining: int, write) -> None:
        while remaining > 0:
            data = self.rfile.read(min(_COPY, remaining))
            if not data:
                raise OSError("client closed the connection mid-body")
            write(data)
            remaining -= len(data)

    def _discard_body(self) -> None:
        if self._chunked_request():
            self.close_connection = True
        else:
            self._copy_exact(int(self.headers.get("Content-Length") or 0), lambda _: None)

    def _copy_response(self, upstream: http.client.HTTPResponse) -> None:
        self.send_response_only(upstream.status, upstream.reason)
        for name, value in upstream.getheaders():
            if name.lower() not in _HOP:
                self.send_header(name, value)
        bodiless = self.command == "HEAD" or upstream.status in (204, 304) or upstream.status < 200
        if upstream.chunked and not bodiless:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if bodiless:
            upstream.read()
        elif upstream.chunked:
            while data := upstream.read1(_COPY):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            while data := upstream.read(_COPY):
                self.wfile.write(data)
        if upstream.will_close:
            self._backend_conn = None
        self.wfile.flush()
