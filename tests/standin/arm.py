"""ARM protocol core: errors, request/response values, routing and api-version checks.

Everything here is provider-neutral. Providers register routes on a `Router`; the server
turns an incoming HTTP request into a `Request`, asks the router for a `Response`, and
renders `ArmError`s the way ARM does: `{"error": {"code": ..., "message": ...}}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

# ARM's own resource types (groups, subscriptions, providers) refuse an unknown version with
# InvalidApiVersionParameter; resource providers answer NoRegisteredProviderFound.
ARM_NAMESPACE = "Microsoft.Resources"


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict | None = None,
                 details: list | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def conflict(code: str, message: str) -> ArmError:
    return ArmError(409, code, message)


def not_found(code: str, message: str) -> ArmError:
    return ArmError(404, code, message)


@dataclass
class Request:
    method: str
    path: str                      # as sent (percent-escaped), without query, duplicate slashes collapsed
    query: dict[str, str]
    headers: dict[str, str]        # lower-cased names
    body: Any                      # parsed JSON, raw text for non-JSON, None when empty
    base_url: str                  # scheme://host:port the client used
    params: dict[str, str] = field(default_factory=dict)   # filled by the router
    principal: dict | None = None  # token claims once authenticated
    lro_failure: tuple[str, str] | None = None   # set by an `lro_failed` fault
    fault: str | None = None       # the scripted fault that fired on this request, for the log
    raw_query: str = ""            # the query as sent: repeated names (a token request's scopes) survive

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class DropConnection(Exception):
    """Raised by a fault to close the connection without answering."""


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern
    handler: Handler
    versions: frozenset[str] | None
    namespace: str
    type_name: str
    authenticated: bool = True
    latency_key: str | None = None   # synchronous writes wait this type's latency before answering


def _compile(template: str) -> re.Pattern:
    pattern = ""
    for part in re.split(r"(\{\w+\})", template):
        if part.startswith("{"):
            name = part[1:-1]
            # {scope} spans several segments (role assignments live under any resource id).
            pattern += f"(?P<{name}>/.*)" if name == "scope" else f"(?P<{name}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(f"^{pattern}/?$", re.IGNORECASE)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, *, versions, namespace: str,
            type_name: str = "", authenticated: bool = True, latency_key: str | None = None) -> None:
        """`versions=None` accepts any api-version (operation-status links carry the caller's)."""
        if template.startswith("{scope}"):
            template = template[len("{scope}"):]
            regex = _compile("{scope}" + template)
        else:
            regex = _compile(template)
        self.routes.append(Route(method.upper(), template, regex, handler,
                                 None if versions is None else frozenset(versions),
                                 namespace, type_name, authenticated, latency_key))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        path_matched = False
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            path_matched = True
            if route.method == method or (method == "HEAD" and route.method == "GET"
                                          and not self._has_head(path)):
                return route, {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
        if path_matched:
            raise ArmError(405, "MethodNotAllowed",
                           f"The requested resource does not support http method '{method}'.")
        raise bad_request("InvalidResourceType",
                          f"The resource type could not be found for path '{path}'.")

    def _has_head(self, path: str) -> bool:
        return any(r.method == "HEAD" and r.regex.match(path) for r in self.routes)


def check_api_version(route: Route, request: Request) -> None:
    version = request.api_version
    if not version:
        raise bad_request("MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
    if route.versions is None or version in route.versions:
        return
    supported = ", ".join(f"'{v}'" for v in sorted(route.versions, reverse=True))
    if route.namespace == ARM_NAMESPACE:
        raise bad_request("InvalidApiVersionParameter",
                          f"The api-version '{version}' is invalid. The supported versions are {supported}.")
    raise bad_request("NoRegisteredProviderFound",
                      f"No registered resource provider found for location 'global' and API version "
                      f"'{version}' for type '{route.type_name}'. The supported api-versions are {supported}.")
