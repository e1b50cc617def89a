"""Where an image reference lives, and whether a registry other than the deployment's holds it,
asked anonymously: the only way Container Apps can pull from such a registry here, since the app
is given no credential for it (`registries[]` names only the deployment's registry).

Naming follows Docker (distribution/reference normalize.go, `splitDockerDomain`): the first path
component is a registry host only if it contains "." or ":", is "localhost", or has an uppercase
letter; otherwise the image is on Docker Hub (`docker.io`, also spelt `index.docker.io`), whose
single-component names live under `library/`. Docker Hub's registry API is served by
`registry-1.docker.io` (moby registry/config.go, `DefaultV2Registry`).

The look-up is the Docker token flow (distribution spec/auth/token.md): `GET /v2/`; a 401 with
`WWW-Authenticate: Bearer realm="...",service="..."` sends the client, without credentials, to
`GET <realm>?service=<service>&scope=repository:<repo>:pull`, which answers `{"token": ...}` (or
`access_token`, accepted for OAuth 2.0 compatibility; at least one is present); then
`HEAD /v2/<repo>/manifests/<tag or digest>` with that bearer token: 200 with
`Docker-Content-Digest`, or 404 (distribution spec, "Existing Manifests"). A HEAD is a version
check, not a pull: Docker Hub does not count it against pull limits (docs.docker.com/docker-hub/
usage/pulls/, "Version checks do not count").

No plain-HTTP fallback: Docker treats 127.0.0.0/8 registries as insecure and would try HTTP, but
Container Apps pulls from registries on the internet, over HTTPS; a registry that only speaks HTTP
is unreachable for it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlflow_aca.errors import OperationError
from mlflow_aca.redaction import register_secret

DOCKER_HUB_NAMES = ("docker.io", "index.docker.io")
DOCKER_HUB_REGISTRY = "registry-1.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
TIMEOUT = 30
# What a registry may answer for a tag: Docker and OCI manifests and indexes (push and the check ask the same).
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
UNREACHABLE_HINT = "Check the reference's registry host and the network (HTTPS_PROXY/NO_PROXY); rerun once it answers."
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ImageLocation:
    """An image reference split the way a registry is asked about it."""

    image: str  # as given
    host: str  # as written in the reference ("docker.io" for Docker Hub)
    registry: str  # the host its registry API answers on
    repository: str
    reference: str  # the tag, or the digest when there is one (a digest wins over a tag)
    by_digest: bool = False

    @property
    def shown(self) -> str:
        return f"{self.repository}{'@' if self.by_digest else ':'}{self.reference}"


def locate(image: str) -> ImageLocation:
    """Split a reference already checked by imageref.checked_image."""
    name, at, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = DEFAULT_TAG
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first == first.lower()):
        host, repository = "docker.io", name
    else:
        host, repository = first, rest
    if host in DOCKER_HUB_NAMES:
        host = "docker.io"
        if "/" not in repository:
            repository = OFFICIAL_PREFIX + repository
    registry = DOCKER_HUB_REGISTRY if host == "docker.io" else host
    return ImageLocation(image=image, host=host, registry=registry, repository=repository,
                         reference=digest if at else tag, by_digest=bool(at))


@dataclass(frozen=True)
class Answer:
    """What a registry said about an image to a client without credentials."""

    outcome: str  # "found", "missing" or "private"
    digest: str | None = None
    detail: str = ""


def anonymous_lookup(location: ImageLocation) -> Answer:
    """Whether `location` can be pulled without credentials. Raises RegistryUnreachable when the
    registry cannot be reached or fails (5xx): that says nothing about the image."""
    base = f"https://{location.registry}"
    what = location.shown
    ping = _request("GET", f"{base}/v2/", location)
    headers = {"Accept": MANIFEST_TYPES}
    if ping.status_code == 401:
        scheme, params = parse_challenge(ping.headers.get("WWW-Authenticate", ""))
        if scheme != "bearer" or not params.get("realm"):
            return Answer("private", detail=f"{location.registry} asks every client for credentials "
                          f"({scheme or 'no'} authentication), so it does not serve {what} anonymously")
        token = _anonymous_token(location, params)
        if token is None:
            return Answer("private", detail=f"{location.registry} refused an anonymous token to pull "
                          f"{location.repository}")
        headers["Authorization"] = f"Bearer {token}"
    elif not ping.ok:
        _fail_unless_client_error(ping, location, "answer the registry API (GET /v2/)")
        raise OperationError(
            f"{location.registry} does not answer as a container registry (GET /v2/: HTTP {ping.status_code}).",
            code="RegistryUnreachable", hint=UNREACHABLE_HINT)
    head = _request("HEAD", f"{base}/v2/{location.repository}/manifests/{location.reference}", location,
                    headers=headers)
    if head.ok:
        return Answer("found", digest=head.headers.get("Docker-Content-Digest"))
    if head.status_code == 404:
        return Answer("missing", detail=f"{location.registry} has no {what}")
    if head.status_code in (401, 403):
        # Docker Hub answers an anonymous token for any name and then 401 for a private or
        # nonexistent repository alike: it does not say which.
        return Answer("private", detail=f"{location.registry} does not let anonymous clients pull {what} "
                      f"(HTTP {head.status_code}): the repository is private or does not exist")
    _fail_unless_client_error(head, location, f"look up {what}")
    raise OperationError(f"{location.registry} answered HTTP {head.status_code} when asked for {what}.",
                         code="RegistryUnreachable", hint=UNREACHABLE_HINT)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """(scheme in lowercase, parameters) of a `WWW-Authenticate` header (RFC 9110 §11.6.1)."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def _anonymous_token(location: ImageLocation, params: dict[str, str]) -> str | None:
    query = {"scope": f"repository:{location.repository}:pull"}
    if params.get("service"):
        query["service"] = params["service"]
    answer = _request("GET", params["realm"], location, params=query)
    if answer.status_code in (401, 403):
        return None
    if not answer.ok:
        _fail_unless_client_error(answer, location, "get an anonymous token")
        return None
    body = json_object(answer)
    token = body.get("token") or body.get("access_token")
    if not token:
        return None
    register_secret(str(token))
    return str(token)


def _fail_unless_client_error(response: Any, location: ImageLocation, action: str) -> None:
    if response.status_code >= 500 or response.status_code == 429:
        raise OperationError(
            f"The registry {location.registry} failed to {action}: HTTP {response.status_code} "
            f"{response.reason or ''}".rstrip() + ".",
            code="RegistryUnreachable", hint=UNREACHABLE_HINT)


def _request(method: str, url: str, location: ImageLocation, **kwargs: Any) -> Any:
    import requests  # deferred: only image checks need it

    try:
        return requests.request(method, url, timeout=TIMEOUT, allow_redirects=True, **kwargs)
    except requests.exceptions.SSLError as exc:
        raise OperationError(f"TLS verification failed for the registry {location.registry}: {exc}",
                             code="RegistryUnreachable",
                             hint="If the registry is reached through a private CA, point REQUESTS_CA_BUNDLE at "
                             "its bundle.") from None
    except requests.RequestException as exc:
        raise OperationError(f"Could not reach the registry {location.registry}: {exc}",
                             code="RegistryUnreachable", hint=UNREACHABLE_HINT) from None


def json_object(response: Any) -> dict[str, Any]:
    """The response's JSON object; empty when the body is not one (registries answer HTML too)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
