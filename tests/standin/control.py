"""Control API: how tests steer the stand-in and read what happened.

`Control` holds the operations; the in-process handle (`Standin`) inherits them, and the
same operations are served over HTTP as `POST /_standin/<operation>` with a JSON object of
keyword arguments, answered `{"result": ...}`. `RemoteStandin` is the client for a stand-in
running in another process (`python -m tests.standin`). Control paths need no token and never
collide with ARM paths, which all start with /subscriptions, /metadata or /msi.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import ssl
import urllib.request
from dataclasses import asdict
from collections.abc import Iterator
from typing import Any

from .arm import Request, Response
from .auth import TOKEN_LIFETIME
from . import easyauth, logstreams
from .faults import Fault
from .latency import parse_scale
from .providers import containerapps


class Control:
    """Operations shared by the in-process handle and the HTTP control path."""

    app: Any   # StandinApp

    OPERATIONS = ("reset", "info", "auth_requests", "add_fault", "clear_faults", "faults", "requests", "clear_requests",
                  "resources", "resource", "set_latency", "set_replication_delay", "unregister_provider",
                  "take_name", "set_revision_state", "set_job_execution_outcome", "set_app_endpoint",
                  "issue_token", "set_token_lifetime", "registry_front", "attach_registry", "add_registry_image",
                  "registry_images", "set_role_propagation_delay", "set_pull_timeout", "identity_http",
                  "identity_requests",
                  "deny_app_registration", "register_application", "add_service_principal", "add_directory_object", "graph_objects",
                  "set_browser_user", "append_app_logs", "refuse_log_tokens", "log_tokens")

    def reset(self) -> None:
        """Forget every resource, fault, log entry and setting (latency is kept)."""
        self.app.store.reset()
        self.app.faults.clear()
        easyauth.reset(self.app)     # sign-in sessions, sign-ins in progress, the layer's decisions
        self.app.log.clear()
        self.app.tokens.lifetime = TOKEN_LIFETIME
        with self.app.store.lock:
            self.app.entra.reset()   # applications, service principals, users, groups (the operator stays)
        with self.app.store.lock:
            self.app.identity_requests.clear()

    def info(self) -> dict:
        app = self.app
        return {"arm_endpoint": app.base_url, "subscription_id": app.subscription_id, "tenant_id": app.tenant_id,
                "audience": app.tokens.audiences[0], "operator_principal_id": app.operator["principal_id"],
                "operator_client_id": app.operator["client_id"], "latency_scale": app.latency.scale}

    # -- faults --------------------------------------------------------------------------------------
    def add_fault(self, fault: Fault | dict | None = None, **fields) -> None:
        """Queue a fault: a `Fault` (see faults.py for ready-made ones) or its fields."""
        if isinstance(fault, dict):
            fields = {**fault, **fields}
            fault = None
        self.app.faults.add(fault or Fault(**fields))

    def clear_faults(self) -> None:
        self.app.faults.clear()

    def faults(self) -> list[dict]:
        """Faults still queued, with the times they have left."""
        return self.app.faults.pending()

    # -- request log ---------------------------------------------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """Logged requests, oldest first; `path` is a case-insensitive substring filter."""
        return [e for e in self.app.log.entries()
                if (method is None or e["method"] == method.upper())
                and (path is None or path.lower() in e["path"].lower())]

    def clear_requests(self) -> None:
        self.app.log.clear()

    # -- state ---------------------------------------------------------------------------------------
    def resources(self, type: str | None = None) -> list[dict]:  # noqa: A002 - ARM's own word
        """Stored resources as GET would show them, plus `write_only`: names of the values kept aside."""
        with self.app.store.lock:
            self.app.store.settle()
            return [self._view(r) for r in list(self.app.store.resources.values())
                    if type is None or r.type.lower() == type.lower()]

    def resource(self, id: str) -> dict | None:  # noqa: A002
        with self.app.store.lock:
            self.app.store.settle()
            res = self.app.store.get(id)
            return self._view(res) if res else None

    @staticmethod
    def _view(res) -> dict:
        return {**json.loads(json.dumps(res.doc)), "write_only": sorted(res.secrets)}

    def set_latency(self, scale: float | str) -> None:
        """Scale real durations: 0 (instant), a float, "real" or "real/100"."""
        self.app.latency.scale = parse_scale(str(scale))

    def set_replication_delay(self, count: int) -> None:
        """Answer PrincipalNotFound to the first `count` role assignments for each identity created from now on."""
        self.app.store.replication_delay = int(count)

    def unregister_provider(self, namespace: str) -> None:
        """Requests to `namespace` get 409 MissingSubscriptionRegistration until it is registered."""
        self.app.store.unregistered.add(namespace.lower())

    def take_name(self, kind: str, name: str) -> None:
        """Mark a globally unique name as taken by another Azure customer: kind is storage, registry or sql."""
        if kind not in ("storage", "registry", "sql"):
            raise ValueError("kind must be storage, registry or sql")
        self.app.store.taken_elsewhere.setdefault(kind, set()).add(name.lower())

    def set_revision_state(self, app_id: str, revision: str | None = None, *, health: str | None = None,
                           running_state: str | None = None, provisioning_state: str | None = None,
                           provisioning_error: str | None = None, restart_count: int | None = None,
                           replicas: int | None = None) -> dict:
        """Change a revision (default: the app's latest) and what its app and replicas report."""
        with self.app.store.lock:
            self.app.store.settle()
            return containerapps.set_revision_state(
                self.app, app_id, revision, health=health, running_state=running_state,
                provisioning_state=provisioning_state, provisioning_error=provisioning_error,
                restart_count=restart_count, replicas=replicas)

    def set_job_execution_outcome(self, job_id: str, status: str) -> None:
        """Executions started from now on end with `status` (Succeeded, Failed, ...)."""
        self.app.store.job_outcomes[job_id.lower()] = status

    def set_app_endpoint(self, app_id: str, *, backend: str | None = None, version: str | None = None) -> None:
        """What the proxy serves on the app's FQDN: relay to `backend` ("host:port"), or answer
        MLflow's /health and /version itself (`version` sets the version text)."""
        with self.app.store.lock:
            containerapps.set_endpoint(self.app, app_id, backend=backend, version=version)

    def append_app_logs(self, resource_id: str, lines: list[str], system: bool = False) -> None:
        """Feed lines to the log stream of an app (its console, or with `system` its system events)
        or of a job execution (its id); followed streams send them at once (logstreams.py)."""
        logstreams.append(self.app, resource_id, lines, system=system)

    def refuse_log_tokens(self, refused: bool = True) -> None:
        """The log streams refuse every token (401), as for a token that expired or was revoked."""
        logstreams.refuse(self.app, refused)

    def log_tokens(self) -> list[str]:
        """The log-stream tokens issued so far (to check that none was printed)."""
        return logstreams.issued(self.app)

    def auth_requests(self, app_id: str | None = None) -> list[dict]:
        """The built-in authentication layer's decisions, oldest first (optionally for one app):
        time, app_id, host, method, path (no query), outcome, status (None: forwarded), reason,
        principal (object id). Never a token. See easyauth.py."""
        return easyauth.decisions(self.app, app_id)

    # -- ACR data plane ------------------------------------------------------------------------------
    def registry_front(self) -> dict:
        """Start (once) the login-server front and say how to start the registry behind it:
        login_server, realm, service, issuer, rootcertbundle (see registry_front.py)."""
        from .registry_front import RegistryFront

        with self.app.store.lock:
            if self.app.registry_front is None:
                self.app.registry_front = RegistryFront(self.app, self.tls, self.workdir)
            return self.app.registry_front.info()

    def attach_registry(self, backend: str) -> dict:
        """Relay the front's /v2/ to the registry at `backend` ("host:port"); every registry resource
        (existing and new) reports the front as its loginServer until the next reset."""
        from .providers.registry import REGISTRY_TYPE

        info = self.registry_front()
        with self.app.store.lock:
            self.app.store.registry_backend = backend
            for res in self.app.store.of_type(REGISTRY_TYPE):
                res.properties["loginServer"] = info["login_server"]
        return self.app.registry_front.info()

    def add_registry_image(self, reference: str, anonymous: bool = False) -> dict:
        """Keep an image "<host>/<repository>:<tag>" in the stand-in's registry catalog and serve
        `https://<host>` through the proxy (registry_catalog.py): on a registry resource's
        `<name>.azurecr.io` with ACR's token rules, on any other host anonymously (`anonymous=True`)
        or not at all (private: anonymous tokens are refused). Returns {"digest": "sha256:..."}."""
        from . import registry_catalog

        return registry_catalog.add_image(self.app, reference, bool(anonymous))

    def registry_images(self, host: str | None = None) -> list[dict]:
        """Catalog images: host, repository, tag, digest, anonymous."""
        from . import registry_catalog

        return registry_catalog.images(self.app, host)

    def set_role_propagation_delay(self, seconds: float) -> None:
        """Role assignments grant data-plane rights (registry pulls and tokens) only once they are
        `seconds` old (their createdOn); 0, the default, grants them at once. See pulls.py."""
        if float(seconds) < 0:
            raise ValueError("seconds must be >= 0")
        with self.app.store.lock:
            self.app.store.role_propagation_delay = float(seconds)

    def set_pull_timeout(self, seconds: float) -> None:
        """How long a new revision keeps retrying an image pull that fails for want of propagated
        rights before its operation fails "Operation expired" (default 900). See pulls.py."""
        if float(seconds) < 0:
            raise ValueError("seconds must be >= 0")
        with self.app.store.lock:
            self.app.store.pull_timeout = float(seconds)

    # -- the identity endpoint over plain HTTP (Container Apps' form) ------------------------------
    def identity_http(self, host: str = "127.0.0.1", url_host: str | None = None) -> str:
        """Start (once per bind address) a plain-HTTP listener serving only the managed-identity
        endpoint, and return its URL for IDENTITY_ENDPOINT (`url_host`: the address clients use,
        e.g. the Docker bridge gateway for a wildcard bind). See identity_http.py."""
        from .identity_http import IdentityHttp

        with self.app.store.lock:
            listener = self.app.identity_listeners.get(host)
            if listener is None:
                listener = self.app.identity_listeners[host] = IdentityHttp(self.app, host)
        return listener.url(url_host)

    def identity_requests(self) -> list[dict]:
        """Token requests on the identity endpoint (either listener), oldest first: query, whether
        X-IDENTITY-HEADER was right/wrong/missing, status, the client id answered."""
        with self.app.store.lock:
            return [dict(r) for r in self.app.identity_requests]

    def issue_token(self, resource: str | None = None, *, client_id: str | None = None,
                    lifetime: int = 3600, claims: dict | None = None) -> str:
        """A token as the identity endpoint would issue it (negative lifetime: already expired),
        without Entra's checks; `claims` override or add claims (another tid, iss, aud...)."""
        found = self.app.find_identity(client_id=client_id)
        if found is None:
            raise ValueError(f"no identity with client id {client_id}")
        oid, appid, mirid = found
        token, _ = self.app.tokens.issue(resource or self.app.tokens.audiences[0], oid=oid, appid=appid,
                                         mirid=mirid, lifetime=lifetime, claims=claims)
        return token

    # -- Microsoft Entra: the directory behind Graph (entra/) -----------------------------------------
    def deny_app_registration(self, denied: bool = True) -> None:
        """Application creation (POST /applications, upsert that creates) answers 403
        Authorization_RequestDenied, as when "Users can register applications" is off."""
        with self.app.store.lock:
            self.app.entra.directory.app_registration_denied = bool(denied)

    def register_application(self, display_name: str, identifier_uris: list | None = None,
                             redirect_uris: list | None = None, id_tokens: bool = True,
                             assignment_required: bool = False) -> dict:
        """An application and its service principal made by an administrator (not owned by the
        operator); "{appId}" in an identifier URI is replaced. Returns id, appId, servicePrincipalId."""
        with self.app.store.lock:
            return self.app.entra.register_application(display_name, identifier_uris, redirect_uris, id_tokens,
                                                       assignment_required)

    def add_service_principal(self, display_name: str) -> dict:
        """An application + service principal with a client secret (entra/clientcreds.py), for
        AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET: client_id, secret, object_id, tenant_id."""
        with self.app.store.lock:
            return self.app.entra.add_service_principal(display_name)

    def add_directory_object(self, kind: str, display_name: str, members: list | None = None) -> str:
        """A user, or a group with these member object ids (users, groups, service principals,
        managed identities' principal ids); returns its object id."""
        with self.app.store.lock:
            return self.app.entra.add_directory_object(kind, display_name, members)

    def graph_objects(self, kind: str | None = None) -> list[dict]:
        """Directory objects (application, servicePrincipal, user, group) with owners/members."""
        with self.app.store.lock:
            return self.app.entra.objects(kind)

    def set_browser_user(self, principal_id: str | None = None) -> None:
        """The user the sign-in page takes as signed in (None: the operator)."""
        with self.app.store.lock:
            self.app.entra.set_browser_user(principal_id)

    def set_token_lifetime(self, seconds: int) -> None:
        """Tokens the identity endpoints issue from now on live `seconds` (until reset)."""
        self.app.tokens.lifetime = int(seconds)


class HttpControl:
    """Serves `Control` operations on /_standin/<operation>."""

    def __init__(self, control: Control) -> None:
        self.control = control

    def __call__(self, req: Request) -> Response:
        name = req.path.rstrip("/").rsplit("/", 1)[-1]
        if name not in Control.OPERATIONS:
            return Response(404, {"error": {"code": "UnknownControlOperation", "message": name}})
        kwargs = req.body if isinstance(req.body, dict) else dict(req.query)
        try:
            result = getattr(self.control, name)(**kwargs)
        except (TypeError, ValueError, KeyError) as err:
            return Response(400, {"error": {"code": "BadControlRequest", "message": str(err)}})
        return Response(200, {"result": result})


class RemoteStandin:
    """Client of the HTTP control path; offers the `Control` operations by name."""

    def __init__(self, arm_endpoint: str, ca_path: str) -> None:
        self.base = arm_endpoint.rstrip("/") + "/_standin/"
        self._context = ssl.create_default_context(cafile=ca_path)

    def __getattr__(self, name: str):
        if name not in Control.OPERATIONS:
            raise AttributeError(name)

        def call(*args, **kwargs):
            if args:   # positional arguments are the operation's leading parameters
                params = list(inspect.signature(getattr(Control, name)).parameters)[1:]
                kwargs.update(zip(params, args))
            if isinstance(kwargs.get("fault"), Fault):
                kwargs["fault"] = asdict(kwargs["fault"])
            request = urllib.request.Request(self.base + name, data=json.dumps(kwargs).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, context=self._context, timeout=30) as response:
                return json.loads(response.read())["result"]
        return call


@contextlib.contextmanager
def standin_process(*options: str, cwd: str | None = None) -> Iterator[tuple[RemoteStandin, dict[str, str]]]:
    """`python -m tests.standin OPTIONS` in a process of its own (what the benchmarks measure
    against): its control client and the variables it prints; stopped when the block ends."""
    import shlex
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "tests.standin", *options], cwd=cwd,
                               stdout=subprocess.PIPE, text=True)
    try:
        env: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("#"):
                break
            name, _, value = line.removeprefix("export ").strip().partition("=")
            env[name] = shlex.split(value)[0] if value else ""
        yield RemoteStandin(env["MLFLOW_ACA_ARM_ENDPOINT"], env["REQUESTS_CA_BUNDLE"]), env
    finally:
        process.terminate()
        process.wait(timeout=30)
