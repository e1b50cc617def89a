"""The stand-in as one object: configuration, state, routing and the request pipeline.

`StandinApp.handle` is the pipeline every HTTP request goes through:
settle due operations → scripted fault → route → bearer token → api-version → latency of
synchronous writes → handler (under the state lock) → request log.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl, urlsplit

from . import metadata
from .arm import ArmError, DropConnection, Request, Response, Router, check_api_version, conflict, not_found
from .auth import TokenService
from .faults import FaultQueue
from .latency import Latency
from .requestlog import RequestLog
from .store import Operation, Resource, Store

if TYPE_CHECKING:
    from .resources import PutContext, ResourceKind

AUDIENCES = metadata.ARM_AUDIENCES
IDENTITY_PATH = "/msi/token"
CONTROL_PREFIX = "/_standin/"
# Namespaces every subscription has registered from the start.
ALWAYS_REGISTERED = {"Microsoft.Resources", "Microsoft.Authorization"}


class StandinApp:
    def __init__(self, *, base_url: str, subscription_id: str | None = None, tenant_id: str | None = None,
                 latency: float = 0.0, request_log: str | None = None) -> None:
        self.base_url = base_url
        self.subscription_id = subscription_id or str(uuid.uuid4())
        self.tenant_id = tenant_id or str(uuid.uuid4())
        # The identity that answers when no client id is asked for: the operator's own
        # (system-assigned) identity, owner of the subscription.
        self.operator = {"principal_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4())}
        self.store = Store()
        self.router = Router()
        self.tokens = TokenService(self.tenant_id, AUDIENCES, base_url + "/")
        self.faults = FaultQueue()
        self.latency = Latency(latency)
        self.log = RequestLog(request_log)
        self.control: Callable[[Request], Response] | None = None   # the control API, set by the handle
        self.hosts: list[Callable[[str], Any]] = []   # virtual-host resolvers for the HTTPS proxy
        self.registry_front: Any = None   # registry_front.RegistryFront, started on first use
        self.identity_listeners: dict[str, Any] = {}   # bind host -> identity_http.IdentityHttp
        self.identity_requests: list[dict] = []   # token requests on either listener (identity_http.py)
        from .providers import register_all
        register_all(self)
        from .entra import Entra
        self.entra = Entra(self)   # Microsoft Graph, sign-in and application tokens (entra/)

    # -- pipeline --------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if req.path.startswith(CONTROL_PREFIX) and self.control is not None:
            return self.control(req)
        return self._answer(req, lambda: self._dispatch(req))

    def serve_data_plane(self, req: Request, handler: Callable[[Request], Response]) -> Response:
        """A data-plane request (a registry's login server, a blob): faults and the request log
        apply as they do to ARM; authentication is the handler's own."""
        def produce() -> Response:
            with self.store.lock:
                self.store.settle()
            return self._fault(req) or handler(req)

        return self._answer(req, produce)

    def serve_host(self, host: str, method: str, target: str, headers: dict, body: str | None,
                   operation: Callable[[Request], tuple[int, bytes, dict]]) -> tuple[int, bytes, dict] | Response:
        """A request to a virtual host's full HTTP service (`proxy.VirtualHost.handle`), through
        serve_data_plane: `operation`'s (status, body, headers), or the Response of a fault that
        answered instead (each service renders that in its own error format)."""
        parts = urlsplit(target)
        req = Request(method=method, path=parts.path, query=dict(parse_qsl(parts.query)), headers=headers,
                      body=body, base_url=f"https://{host}", raw_query=parts.query)
        answer: dict = {}

        def handler(request: Request) -> Response:
            answer["result"] = operation(request)
            return Response(answer["result"][0])

        response = self.serve_data_plane(req, handler)
        return answer.get("result") or response

    def _answer(self, req: Request, produce: Callable[[], Response]) -> Response:
        """Turn ARM errors into responses and log every request, answered or dropped."""
        try:
            response = produce()
        except ArmError as err:
            response = Response(err.status, err.body(), err.headers)
        except DropConnection:
            self._record(req, 0)
            raise
        self._record(req, response.status)
        return response

    def _fault(self, req: Request) -> Response | None:
        """Fire the first queued fault matching the request: an answer, a dropped connection, or
        (lro_failed) a mark on the request that makes the operation it starts fail."""
        fault = self.faults.take(req.method, req.path)
        if fault is None:
            return None
        req.fault = fault.code if fault.kind == "status" else fault.kind
        if fault.kind == "drop":
            raise DropConnection()
        if fault.kind == "status":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return Response(fault.status, {"error": {"code": fault.code, "message": fault.message}}, headers)
        req.lro_failure = (fault.code, fault.message)
        return None

    def _dispatch(self, req: Request) -> Response:
        with self.store.lock:
            self.store.settle()
        faulted = self._fault(req)
        if faulted is not None:
            return faulted
        if req.path.rstrip("/").lower() == "/metadata/endpoints":
            return metadata.endpoints(self, req)
        if req.path.rstrip("/").lower() == IDENTITY_PATH:
            from .identity_http import record_token_request
            response = self.tokens.managed_identity(req, self.find_identity)
            record_token_request(self, req, response, "https")
            return response
        answered = self.entra.handle(req)   # /v1.0/... (Graph) and /{tenant}/oauth2/v2.0/authorize
        if answered is not None:
            return answered
        route, params = self.router.match(req.method, req.path)
        req.params = params
        if route.authenticated:
            req.principal = self.tokens.authenticate(req)
        check_api_version(route, req)
        if route.namespace not in ALWAYS_REGISTERED:
            self.require_registered(route.namespace)
        if route.latency_key and req.method != "GET":
            time.sleep(self.latency.seconds(route.latency_key))
        with self.store.lock:
            response = route.handler(req)
        if req.method == "HEAD":
            response.body = None
        return response

    def _record(self, req: Request, status: int) -> None:
        self.log.record(method=req.method, path=req.path, api_version=req.api_version, body=req.body,
                        status=status, fault=req.fault)

    # -- scope checks --------------------------------------------------------------------------
    def require_subscription(self, req: Request) -> None:
        sub = req.params.get("subscriptionId")
        if sub is not None and sub.lower() != self.subscription_id:
            raise not_found("SubscriptionNotFound", f"The subscription '{sub}' could not be found.")

    def require_scope(self, req: Request, *, write: bool = False) -> Resource | None:
        """Check the subscription and, when the path names one, the resource group."""
        self.require_subscription(req)
        rg = req.params.get("resourceGroupName")
        if rg is None:
            return None
        group = self.store.get(self.group_id(rg))
        if group is None:
            raise not_found("ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        if write and group.busy and group.operation.kind == "delete":
            raise conflict("ResourceGroupBeingDeleted",
                           f"The resource group '{group.doc['name']}' is in deprovisioning state and cannot "
                           "perform this operation.")
        return group

    def group_id(self, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{name}"

    def require_registered(self, namespace: str) -> None:
        if namespace.lower() in self.store.unregistered:
            raise conflict("MissingSubscriptionRegistration",
                           f"The subscription is not registered to use namespace '{namespace}'. "
                           "See https://aka.ms/rps-not-found for how to register subscriptions.")

    # -- principals ------------------------------------------------------------------------------
    def identities(self) -> list[Resource]:
        return self.store.of_type("Microsoft.ManagedIdentity/userAssignedIdentities")

    def find_identity(self, *, client_id=None, object_id=None, resource_id=None):
        if not (client_id or object_id or resource_id):
            return self.operator["principal_id"], self.operator["client_id"], ""
        with self.store.lock:
            for res in self.identities():
                props = res.properties
                if ((client_id and props["clientId"] == client_id.lower())
                        or (object_id and props["principalId"] == object_id.lower())
                        or (resource_id and res.id.lower() == resource_id.lower())):
                    return props["principalId"], props["clientId"], res.id
        return None

    def principal_type(self, principal_id: str) -> str | None:
        """Entra's type for a principal the stand-in knows, or None when it does not exist."""
        if principal_id.lower() == self.operator["principal_id"]:
            return "ServicePrincipal"
        for res in self.identities():
            if res.properties["principalId"] == principal_id.lower():
                return "ServicePrincipal"
        return None

    # -- writes and long-running operations --------------------------------------------------------
    def store_put(self, kind: "ResourceKind", res: Resource, ctx: "PutContext", *, created: bool,
                  sync: bool) -> Response:
        """Keep a PUT's result: at once (sync), or behind a long-running operation."""
        if sync:
            if ctx.failure:
                raise ArmError(400, *ctx.failure)
            if kind.has_provisioning_state:
                res.properties["provisioningState"] = "Succeeded"
            self.store.put(res)
            for callback in ctx.on_stored + ctx.on_success:
                callback()
            return Response(kind.created_status if created else 200, kind.render(res))
        if kind.has_provisioning_state:
            res.properties["provisioningState"] = kind.lro_state
        op = self.store.new_operation(res.id, "put", self.latency.seconds(kind.latency_key))
        op.failure = ctx.failure
        res.operation = op

        def succeeded() -> None:
            res.properties["provisioningState"] = "Succeeded"
            for callback in ctx.on_success:
                callback()

        def failed() -> None:
            res.properties["provisioningState"] = "Failed"
            for callback in ctx.on_failure:
                callback()
            if created and ctx.remove_on_failure:
                self.store.remove(res.id)

        op.on_success.append(succeeded)
        op.on_failure.append(failed)
        op.result = lambda: kind.render(res)
        self.store.put(res)
        for callback in ctx.on_stored:
            callback()
        location = res.doc.get("location") or "global"
        if kind.put_lro == "location" and created:
            return Response(202, None, {"Location": self.operation_url(ctx.request, op, kind.namespace, location,
                                                                       "operationResults")})
        return Response(201 if created else 200, kind.render(res),
                        {"Azure-AsyncOperation": self.operation_url(ctx.request, op, kind.namespace, location,
                                                                    "operationStatuses")})

    def begin_operation(self, req: Request, resource_id: str, kind: str, latency_key: str) -> Operation:
        """An operation that completes after the latency of `latency_key` (or fails as a fault said)."""
        op = self.store.new_operation(resource_id, kind, self.latency.seconds(latency_key))
        op.failure = req.lro_failure
        return op

    def begin_delete(self, req: Request, res: Resource, latency_key: str,
                     on_done: Callable[[], None] | None = None) -> Operation:
        op = self.begin_operation(req, res.id, "delete", "delete:" + latency_key)
        res.operation = op
        if "properties" in res.doc:
            res.properties["provisioningState"] = "Deleting"

        def done() -> None:
            self.store.remove(res.id)
            if on_done:
                on_done()

        def failed() -> None:
            if "properties" in res.doc:
                res.properties["provisioningState"] = "Failed"
        op.on_success.append(done)
        op.on_failure.append(failed)
        return op

    def accepted_delete(self, req: Request, op: Operation) -> Response:
        namespace = req.path.split("/providers/")[1].split("/")[0] if "/providers/" in req.path else "Microsoft.Resources"
        return Response(202, None, {"Location": self.operation_url(req, op, namespace, "global", "operationResults")})

    def operation_url(self, req: Request, op: Operation, namespace: str, location: str, which: str) -> str:
        """Link to poll `op`: `operationStatuses` (an Azure-AsyncOperation document) or
        `operationResults` (Location protocol: 202 until done)."""
        prefix = f"/subscriptions/{self.subscription_id}/providers/{namespace}/locations/{location}"
        op.path = f"{prefix}/operationStatuses/{op.id}"
        return f"{req.base_url}{prefix}/{which}/{op.id}?api-version={req.api_version}"


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
