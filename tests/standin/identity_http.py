"""The managed-identity endpoint as Container Apps provides it: plain HTTP on a local URL.

In a container app, `IDENTITY_ENDPOINT` is a plain-HTTP URL such as
`http://localhost:42356/msi/token`, called with `X-IDENTITY-HEADER: $IDENTITY_HEADER`
(learn.microsoft.com/azure/container-apps/managed-identity, "HTTP GET" tab and "REST endpoint
reference"; MicrosoftDocs/azure-docs articles/container-apps/managed-identity.md). Clients that
bring their own HTTP stack (Microsoft's ODBC driver uses libcurl) would not trust the stand-in's
HTTPS certificate, so this listener serves the same endpoint (same TokenService, same identities)
over HTTP, and only that endpoint.

The body is compact JSON (`"access_token":"..."`, app.dumps): ODBC Driver 18 parses only that
form (observed, shared/notes/odbc-and-sql.md), and it works against the real endpoint, so
the real endpoint answers compactly too; Microsoft's own fixture of this response is compact
as well (Azure/azure-sdk-for-net#5264, TokenHelper.GetManagedIdentityAppServicesTokenResponse).

Every request goes through the stand-in's fault queue and request log, and is also kept in
`app.identity_requests` with its query, whether the header was right and the outcome.
"""

from __future__ import annotations

import http.server
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from .app import IDENTITY_PATH, dumps
from .arm import DropConnection, Request, Response
from .server import ThreadedServer, drop_connection, send_json

if TYPE_CHECKING:
    from .app import StandinApp


class IdentityHttp:
    """One plain-HTTP listener for the identity endpoint."""

    def __init__(self, app: "StandinApp", host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.server = _Server((host, port), self)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="standin-identity-http", daemon=True)
        self._thread.start()

    def url(self, host: str | None = None) -> str:
        """The IDENTITY_ENDPOINT value; `host` is the address clients use (default: the bound one,
        loopback for a wildcard bind)."""
        shown = host or (self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1")
        return f"http://{shown}:{self.port}{IDENTITY_PATH}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def record_token_request(app: "StandinApp", req: Request, response: Response, via: str,
                         request_line: str | None = None) -> None:
    """Keep what a token request asked and how it ended (the token itself is not kept)."""
    sent = req.headers.get("x-identity-header")
    body = response.body if isinstance(response.body, dict) else {}
    with app.store.lock:
        app.identity_requests.append({
            "time": time.time(), "via": via, "request_line": request_line, "method": req.method, "path": req.path,
            "query": dict(req.query), "header": "missing" if sent is None
            else ("right" if sent == app.tokens.identity_header else "wrong"),
            "user_agent": req.headers.get("user-agent"), "status": response.status,
            "client_id": body.get("client_id"), "resource": body.get("resource"), "message": body.get("message")})


class _Server(ThreadedServer):
    def __init__(self, address: tuple[str, int], listener: IdentityHttp) -> None:
        super().__init__(address, _Handler)
        self.listener = listener


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureStandinIdentity/1.0"

    def log_message(self, format, *args) -> None:  # noqa: A002 - signature from the base class
        pass

    def _serve(self) -> None:
        app = self.server.listener.app
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        req = Request(method=self.command, path=parts.path, query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                      headers={k.lower(): v for k, v in self.headers.items()}, body=None,
                      base_url=f"http://{self.headers.get('Host') or self.server.listener.url()}",
                      raw_query=parts.query)

        def answer(request: Request) -> Response:
            if request.path.rstrip("/").lower() != IDENTITY_PATH or request.method != "GET":
                return Response(404, {"statusCode": 404,
                                      "message": f"{request.method} {request.path} is not served here."})
            return app.tokens.managed_identity(request, app.find_identity)

        try:
            response = app.serve_data_plane(req, answer)
        except DropConnection:
            drop_connection(self)
            return
        record_token_request(app, req, response, "http", self.requestline)
        send_json(self, response, b"" if response.body is None else dumps(response.body))

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve
