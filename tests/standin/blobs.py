"""The storage account behind ACR Tasks: where build sources are uploaded and run logs are read.

ACR hands out SAS URLs on its own storage (`https://<account>.blob.core.windows.net/...?sig=`):
`listBuildSourceUploadUrl` one to write the source archive, `listLogSasUrl` one to read a run's
log. The stand-in serves that account as a virtual host of its HTTPS proxy (clients reach it
with `HTTPS_PROXY`, like an app's FQDN), with just the Blob REST operations those clients use:
Put Blob (BlockBlob), Get Blob Properties (HEAD) and Get Blob with a range. A run's log blob
grows while the run goes on and carries the metadata `Complete` once it has ended, which is
how `az acr build` (and the product) know to stop reading.

Every request goes through the fault queue and the request log; SAS signatures are checked
(a wrong or missing `sig` answers 403 AuthenticationFailed, as Azure Storage does).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Callable
from urllib.parse import unquote, urlencode

from .arm import Request, Response
from .proxy import VirtualHost

if TYPE_CHECKING:
    from .app import StandinApp

ACCOUNT = "standinacrtasks"
STORAGE_VERSION = "2021-08-06"
SAS_LIFETIME = 3600


@dataclass
class Blob:
    """One blob and the SAS that grants access to it. `content` makes a blob whose bytes and
    metadata are computed at each read (a run log)."""

    sig: str
    permissions: str  # "cw" (upload) or "r" (read)
    expires: float
    data: bytes | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    content: Callable[[], tuple[bytes, dict[str, str]]] | None = None
    modified: float = field(default_factory=time.time)

    def read(self) -> tuple[bytes, dict[str, str]]:
        if self.content is not None:
            return self.content()
        return self.data or b"", self.metadata


def host(app: "StandinApp") -> str:
    from .metadata import SUFFIXES

    return f"{ACCOUNT}.blob.{SUFFIXES['storage']}"


def grant(app: "StandinApp", container: str, name: str, permissions: str, *,
          content: Callable[[], tuple[bytes, dict[str, str]]] | None = None) -> str:
    """Make a blob slot (an empty upload target, or a computed blob) and return its SAS URL."""
    sig = secrets.token_urlsafe(24)
    expires = time.time() + SAS_LIFETIME
    app.store.blobs[f"{container}/{name}"] = Blob(sig=sig, permissions=permissions, expires=expires, content=content)
    query = urlencode({"sv": STORAGE_VERSION, "sr": "b", "sp": permissions,
                       "se": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)), "sig": sig})
    return f"https://{host(app)}/{container}/{name}?{query}"


def uploaded(app: "StandinApp", container: str, name: str) -> bytes | None:
    blob = app.store.blobs.get(f"{container}/{name}")
    return None if blob is None else blob.data


def register(app: "StandinApp") -> None:
    def resolve(name: str) -> VirtualHost | None:
        if name != host(app):
            return None
        return VirtualHost(handle=lambda method, target, headers, body: _serve(app, method, target, headers, body))

    app.hosts.append(resolve)


def _serve(app: "StandinApp", method: str, target: str, headers: dict, body: bytes) -> tuple[int, bytes, dict]:
    answer = app.serve_host(host(app), method, target, headers, None,
                            lambda request: _blob_operation(app, request, body))
    if isinstance(answer, Response):  # a fault answered
        return _error(answer.status, (answer.body or {}).get("error", {}).get("code", "InternalError"),
                      (answer.body or {}).get("error", {}).get("message", ""))
    return answer


def _blob_operation(app: "StandinApp", req: Request, body: bytes) -> tuple[int, bytes, dict]:
    key = unquote(req.path.lstrip("/"))
    with app.store.lock:
        blob = app.store.blobs.get(key)
    if blob is None:
        return _error(404, "BlobNotFound", "The specified blob does not exist.")
    if req.query.get("sig") != blob.sig or time.time() > blob.expires:
        return _error(403, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the "
                      "value of Authorization header is formed correctly including the signature.")
    if req.method == "PUT":
        if "w" not in blob.permissions or blob.content is not None:
            return _error(403, "AuthorizationPermissionMismatch",
                          "This request is not authorized to perform this operation using this permission.")
        if req.query.get("comp"):
            return _error(400, "UnsupportedQueryParameter", "Only single-request Put Blob is served here.")
        if req.headers.get("x-ms-blob-type") != "BlockBlob":
            return _error(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is "
                          "not specified: x-ms-blob-type.")
        blob.data, blob.modified = body, time.time()
        blob.metadata = {k[len("x-ms-meta-"):]: v for k, v in req.headers.items() if k.startswith("x-ms-meta-")}
        return 201, b"", {**_common(blob, body), "Content-MD5": _md5(body), "x-ms-request-server-encrypted": "true"}
    if req.method not in ("GET", "HEAD"):
        return _error(405, "UnsupportedHttpVerb", f"The resource doesn't support the specified HTTP verb {req.method}.")
    if "r" not in blob.permissions:
        return _error(403, "AuthorizationPermissionMismatch",
                      "This request is not authorized to perform this operation using this permission.")
    data, metadata = blob.read()
    headers = {**_common(blob, data), "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
               **{f"x-ms-meta-{k}": v for k, v in metadata.items()}}
    if req.method == "HEAD":
        return 200, b"", {**headers, "Content-Length": str(len(data))}
    wanted = req.headers.get("x-ms-range") or req.headers.get("range")
    if not wanted:
        return 200, data, headers
    start_text, _, end_text = wanted.removeprefix("bytes=").partition("-")
    start = int(start_text)
    end = min(int(end_text) if end_text else len(data) - 1, len(data) - 1)
    if start >= len(data):
        return _error(416, "InvalidRange", "The range specified is invalid for the current size of the resource.",
                      {"Content-Range": f"bytes */{len(data)}"})
    return 206, data[start:end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"}


def _common(blob: Blob, data: bytes) -> dict:
    return {"ETag": f'"0x{hashlib.sha1(data).hexdigest()[:15].upper()}"', "x-ms-blob-type": "BlockBlob",
            "Last-Modified": formatdate(blob.modified, usegmt=True), "x-ms-version": STORAGE_VERSION,
            "x-ms-request-id": secrets.token_hex(8), "Date": formatdate(usegmt=True)}


def _md5(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _error(status: int, code: str, message: str, extra: dict | None = None) -> tuple[int, bytes, dict]:
    xml = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
           f'RequestId:{secrets.token_hex(8)}</Message></Error>').encode()
    return status, xml, {"x-ms-error-code": code, "Content-Type": "application/xml", "x-ms-version": STORAGE_VERSION,
                         **(extra or {})}
