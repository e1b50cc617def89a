"""Registry images without a real registry: a catalog the stand-in serves through its proxy.

`add_registry_image("<host>/<repo>:<tag>", anonymous=False)` (control API) keeps an image
(a small OCI manifest and its config blob) in the store; on the front of an attached real
registry (`attach_registry`) it pushes that image to the real registry instead. `https://<host>` is then served as a
virtual host of the CONNECT proxy with the read side of the distribution API:

- `GET /v2/` → 401 + `WWW-Authenticate: Bearer realm="https://<host>/oauth2/token",service="<host>"`
  (the Docker token flow, distribution spec "Token Authentication Specification"), 200 with a token;
- `GET /oauth2/token?service=<host>&scope=repository:<repo>:pull` without credentials: a token when
  every repository asked for allows anonymous pull, else 401 UNAUTHORIZED;
- on a registry resource's `<name>.azurecr.io` login server also ACR's `POST /oauth2/exchange` and
  `/oauth2/token` with credentials (refresh token), exactly as registry_tokens.py answers them for
  the front of a real registry, role assignments and their propagation delay included;
- `HEAD|GET /v2/<repo>/manifests/<tag|digest>` (Bearer token with pull on the repository) → 200 +
  `Docker-Content-Digest`, 404 `MANIFEST_UNKNOWN` / `NAME_UNKNOWN`, 401 without a token;
  `/v2/<repo>/blobs/<digest>` (the config blob) and `/v2/<repo>/tags/list`.

A host is served when it has catalog images, or when it is the login server of a registry
resource while no real registry is attached (`attach_registry` makes the front at
127.0.0.1:<port> the login server instead, with the real registry behind it). Registry tokens
here are signed with the stand-in's own key (`app.tokens`), which is also what checks them.
Every request goes through the fault queue and the request log (`serve_data_plane`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from . import registry_tokens
from .arm import Request, Response
from .proxy import VirtualHost

if TYPE_CHECKING:
    from .app import StandinApp

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
ACR_UNAUTHORIZED = "authentication required, visit https://aka.ms/acr/authorization for more information."
# distribution's own text for a request without the needed token (registry/api/errcode).
UNAUTHORIZED = "authentication required"
DOCKER_HUB = "docker.io"
_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ROUTE = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")


@dataclass
class Reference:
    host: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}" + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


@dataclass
class Repository:
    tags: dict[str, str] = field(default_factory=dict)        # tag -> manifest digest
    manifests: dict[str, bytes] = field(default_factory=dict)  # digest -> manifest bytes
    blobs: dict[str, bytes] = field(default_factory=dict)      # digest -> config blob
    anonymous: bool = False


def parse_reference(text: str) -> Reference:
    """An image reference as Docker reads it (distribution/reference): the first component is a
    registry host when it has a dot or a port or is `localhost`, else the image is Docker Hub's."""
    text = str(text).strip()
    name, _, digest = text.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first.lower(), rest
    else:
        host, path = DOCKER_HUB, name if "/" in name else f"library/{name}"
    repository, colon, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if host.endswith(":443"):
        host = host[:-len(":443")]
    if not _REPO.match(repository or "") or (colon and not _TAG.match(tag)) or (digest and not _DIGEST.match(digest)):
        raise ValueError(f"invalid image reference {text!r}")
    return Reference(host, repository, tag or (None if digest else "latest"), digest or None)


# -- the catalog ------------------------------------------------------------------------------------
def add_image(app: "StandinApp", reference: str, anonymous: bool = False) -> dict:
    """Keep an image under `reference`; returns {"digest": "sha256:..."} (the manifest's digest)."""
    ref = parse_reference(reference)
    if ref.host == DOCKER_HUB:
        raise ValueError(f"{reference!r} names no registry host: use <host>/<repository>:<tag>")
    if ref.tag is None:
        raise ValueError(f"{reference!r}: give a tag (the digest is computed)")
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {
        "org.opencontainers.image.ref.name": str(ref)}}, "rootfs": {"type": "layers", "diff_ids": []}},
        sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": {
        "mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config)}, "layers": []},
        sort_keys=True).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    front = app.registry_front
    if front is not None and app.store.registry_backend and ref.host == front.login_server:
        _push_to_real_registry(app, ref, manifest, config, config_digest)   # the front's real registry
        return {"digest": digest}
    if ":" in ref.host:
        raise ValueError(f"{ref.host}: catalog registries are served through the proxy on port 443 only")
    with app.store.lock:
        repo = app.store.registry_images.setdefault(ref.host, {}).setdefault(ref.repository, Repository())
        repo.tags[ref.tag] = digest
        repo.manifests[digest] = manifest
        repo.blobs[config_digest] = config
        repo.anonymous = repo.anonymous or bool(anonymous)
    return {"digest": digest}


def _push_to_real_registry(app: "StandinApp", ref: Reference, manifest: bytes, config: bytes,
                           config_digest: str) -> None:
    """Push the image to the registry behind the front (distribution API: monolithic blob upload
    POST + PUT ?digest=, then PUT of the manifest) with a push token the front signs."""
    import http.client

    front = app.registry_front
    token = front.sign_registry_token(subject="azure-standin-catalog", ttl=60, access=[
        {"type": "repository", "name": ref.repository, "actions": ["pull", "push"]}])
    host, _, port = app.store.registry_backend.rpartition(":")

    def call(method: str, target: str, body: bytes = b"", content_type: str | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Length": str(len(body))}
        if content_type:
            headers["Content-Type"] = content_type
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status >= 300:
            raise ValueError(f"the registry at {app.store.registry_backend} answered {response.status} to "
                             f"{method} {target.split('?')[0]}")
        return response

    started = call("POST", f"/v2/{ref.repository}/blobs/uploads/")
    location = urlsplit(started.getheader("Location") or "")
    query = (location.query + "&" if location.query else "") + f"digest={config_digest}"
    call("PUT", f"{location.path}?{query}", config, "application/octet-stream")
    call("PUT", f"/v2/{ref.repository}/manifests/{ref.tag}", manifest, MANIFEST_TYPE)


def images(app: "StandinApp", host: str | None = None) -> list[dict]:
    """Catalog images: host, repository, tag, digest, anonymous."""
    with app.store.lock:
        return [{"host": h, "repository": name, "tag": tag, "digest": digest, "anonymous": repo.anonymous}
                for h, repos in app.store.registry_images.items() if host is None or h == host.lower()
                for name, repo in repos.items() for tag, digest in repo.tags.items()]


def lookup(app: "StandinApp", ref: Reference) -> str | None:
    """The digest the catalog holds for a reference, or None."""
    repo = app.store.registry_images.get(ref.host, {}).get(ref.repository)
    if repo is None:
        return None
    if ref.digest:
        return ref.digest if ref.digest in repo.manifests else None
    return repo.tags.get(ref.tag or "latest")


def anonymous(app: "StandinApp", host: str, repository: str) -> bool:
    repo = app.store.registry_images.get(host, {}).get(repository)
    return repo is not None and repo.anonymous


def acr_registry(app: "StandinApp", host: str):
    """The registry resource whose login server is `host` (any registry, attached or not), or None."""
    for res in app.store.of_type(registry_tokens.REGISTRY_TYPE):
        if str(res.properties.get("loginServer", "")).lower() == host:
            return res
    return None


def serves(app: "StandinApp", host: str) -> bool:
    return host in app.store.registry_images or acr_registry(app, host) is not None


# -- the data plane --------------------------------------------------------------------------------
def register(app: "StandinApp") -> None:
    def resolve(name: str) -> VirtualHost | None:
        if not serves(app, name):
            return None
        return VirtualHost(handle=lambda method, target, headers, body:
                           _serve(app, name, method, target, headers, body))

    app.hosts.append(resolve)


class _Front:
    """What registry_tokens.token needs of a login server: its name and a token signer."""

    def __init__(self, app: "StandinApp", host: str) -> None:
        self.app, self.login_server = app, host

    def sign_registry_token(self, *, subject: str, access: list[dict], ttl: int) -> str:
        return _sign(self.app, self.login_server, subject, access, ttl)


def _sign(app: "StandinApp", host: str, subject: str, access: list[dict], ttl: int) -> str:
    now = int(time.time())
    return app.tokens.sign({"iss": registry_tokens.ISSUER, "sub": subject, "aud": host, "iat": now, "nbf": now - 30,
                            "exp": now + ttl, "jti": uuid.uuid4().hex, "access": access})


def _serve(app: "StandinApp", host: str, method: str, target: str, headers: dict,
           body: bytes) -> tuple[int, bytes, dict]:
    answer = app.serve_host(host, method, target, headers, body.decode("utf-8", errors="replace") if body else None,
                            lambda request: _operation(app, host, request))
    if isinstance(answer, Response):  # a fault answered
        return answer.status, json.dumps(answer.body or {}).encode(), {
            "Content-Type": "application/json; charset=utf-8", **answer.headers}
    return answer


def _operation(app: "StandinApp", host: str, req: Request) -> tuple[int, bytes, dict]:
    path = req.path.rstrip("/") or "/"
    with app.store.lock:
        is_acr = acr_registry(app, host) is not None
    if path == "/oauth2/exchange" and req.method == "POST" and is_acr:
        return _json(registry_tokens.exchange(app, host, req))
    if path == "/oauth2/token" and req.method in ("GET", "POST"):
        if req.method == "GET" and not req.headers.get("authorization"):
            return _anonymous_token(app, host, req, is_acr)
        if is_acr:
            return _json(registry_tokens.token(app, _Front(app, host), req))
        return _error(401, "UNAUTHORIZED", UNAUTHORIZED, _basic(host))
    if path == "/v2":
        if req.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", "The operation is unsupported.")
        if _claims(app, host, req) is None:
            return _error(401, "UNAUTHORIZED", ACR_UNAUTHORIZED if is_acr else UNAUTHORIZED, _challenge(host))
        return 200, b"{}", {"Content-Type": "application/json; charset=utf-8",
                            "Docker-Distribution-Api-Version": "registry/2.0"}
    tags = re.match(r"^/v2/(?P<repo>.+)/tags/list$", path)
    route = _ROUTE.match(path)
    if not tags and not route:
        return _error(404, "NOT_FOUND", f"{req.method} {path} is not served here.")
    repository = (tags or route).group("repo")
    if req.method not in ("GET", "HEAD"):
        return _error(405, "UNSUPPORTED", "This registry is the stand-in's catalog (read-only): add images with the "
                                          "control operation add_registry_image.")
    claims = _claims(app, host, req)
    if claims is None or not _may_pull(claims, repository):
        return _error(401, "UNAUTHORIZED", ACR_UNAUTHORIZED if is_acr else UNAUTHORIZED,
                      _challenge(host, repository, insufficient=claims is not None))
    with app.store.lock:
        repo = app.store.registry_images.get(host, {}).get(repository)
        if repo is None:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry", detail={"name": repository})
        if tags:
            return 200, json.dumps({"name": repository, "tags": sorted(repo.tags)}).encode(), {
                "Content-Type": "application/json; charset=utf-8"}
        ref = route.group("ref")
        if route.group("kind") == "blobs":
            blob = repo.blobs.get(ref)
            if blob is None:
                return _error(404, "BLOB_UNKNOWN", "blob unknown to registry", detail=ref)
            return 200, blob, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ref,
                               "Content-Length": str(len(blob))}
        digest = ref if ref.startswith("sha256:") else repo.tags.get(ref)
        manifest = repo.manifests.get(digest or "")
    if manifest is None:
        # ACR's wording, as Container Apps quotes it (microsoft/azure-container-apps#816 and the
        # issues cited in pulls.py): `manifest tagged by "<tag>" is not found`.
        by_digest = ref.startswith("sha256:")
        message = f"manifest {ref} is not found" if by_digest else f'manifest tagged by "{ref}" is not found'
        return _error(404, "MANIFEST_UNKNOWN", message, detail={"Digest" if by_digest else "Tag": ref})
    return 200, manifest, {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": digest,
                           "Content-Length": str(len(manifest)), "ETag": f'"{digest}"',
                           "Docker-Distribution-Api-Version": "registry/2.0"}


def _anonymous_token(app: "StandinApp", host: str, req: Request, is_acr: bool) -> tuple[int, bytes, dict]:
    """The Docker token flow without credentials: granted for repositories that allow anonymous pull
    (docker.io's public images, ACR's anonymousPullEnabled); any other repository is refused."""
    if req.query.get("service", "").lower() != host:
        return _error(400, "INVALID_SERVICE", f"service must be {host}.")
    access = []
    with app.store.lock:
        for name, value in parse_qsl(req.raw_query, keep_blank_values=True):
            if name != "scope":
                continue
            for scope in value.split(" "):
                kind, _, rest = scope.partition(":")
                repository, _, actions = rest.rpartition(":")
                if kind != "repository" or not repository:
                    continue
                if not anonymous(app, host, repository):
                    return _error(401, "UNAUTHORIZED", ACR_UNAUTHORIZED if is_acr else UNAUTHORIZED, _basic(host))
                access.append({"type": "repository", "name": repository,
                               "actions": [a for a in actions.split(",") if a == "pull"]})
    signed = _sign(app, host, "", access, registry_tokens.ACCESS_LIFETIME)
    return 200, json.dumps({"token": signed, "access_token": signed,
                            "expires_in": registry_tokens.ACCESS_LIFETIME}).encode(), {
        "Content-Type": "application/json; charset=utf-8"}


def _claims(app: "StandinApp", host: str, req: Request) -> dict | None:
    """The claims of the request's registry token for this host, or None."""
    scheme, _, token = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    claims = app.tokens.verify(token.strip())
    if (claims is None or claims.get("aud") != host or claims.get("iss") != registry_tokens.ISSUER
            or "access" not in claims or claims.get("exp", 0) < time.time()):
        return None
    return claims


def _may_pull(claims: dict, repository: str) -> bool:
    return any(a.get("type") == "repository" and a.get("name") == repository and "pull" in a.get("actions", [])
               for a in claims.get("access", []))


def _challenge(host: str, repository: str | None = None, insufficient: bool = False) -> dict:
    value = f'Bearer realm="https://{host}/oauth2/token",service="{host}"'
    if repository:
        value += f',scope="repository:{repository}:pull"'
    if insufficient:
        value += ',error="insufficient_scope"'
    return {"WWW-Authenticate": value}


def _basic(host: str) -> dict:
    return {"WWW-Authenticate": f'Basic realm="https://{host}/oauth2/token"'}


def _error(status: int, code: str, message: str, headers: dict | None = None, detail=None) -> tuple[int, bytes, dict]:
    error = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    return status, json.dumps({"errors": [error]}).encode(), {"Content-Type": "application/json; charset=utf-8",
                                                              "Docker-Distribution-Api-Version": "registry/2.0",
                                                              **(headers or {})}


def _json(response: Response) -> tuple[int, bytes, dict]:
    return response.status, json.dumps(response.body).encode(), {"Content-Type": "application/json; charset=utf-8",
                                                                 **response.headers}
