"""Generic ARM resource semantics shared by every provider.

A provider describes each resource type with a `ResourceKind` (its path, api-versions, how
its PUT completes, its naming rule and a `build` hook that validates a request body), and
`register_kind` wires PUT/GET/PATCH/DELETE/list with the behaviour ARM gives every type:
parent and resource-group checks, location rules, tags, provisioning states, long-running
operations and delete cascades.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .arm import ArmError, Request, Response, bad_request, conflict, not_found
from .store import Resource

if TYPE_CHECKING:
    from .app import StandinApp

LOCATIONS = {
    "eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus",
    "southcentralus", "westcentralus", "canadacentral", "brazilsouth", "northeurope",
    "westeurope", "uksouth", "ukwest", "francecentral", "germanywestcentral", "swedencentral",
    "switzerlandnorth", "norwayeast", "polandcentral", "italynorth", "japaneast", "japanwest",
    "koreacentral", "australiaeast", "southeastasia", "eastasia", "centralindia",
    "southafricanorth", "uaenorth",
}
RG_PREFIX = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
_TAG_NAME_FORBIDDEN = re.compile(r"[<>%&\\?/]")


def normalize_location(value: Any) -> str:
    # ARM accepts display names ("West Europe") and returns the normalized form.
    return str(value).replace(" ", "").lower()


def deep_merge(base: Any, patch: Any) -> Any:
    """JSON merge-patch as ARM's PATCH applies it: objects merge, everything else replaces."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        merged[key] = deep_merge(merged.get(key), value) if isinstance(value, dict) else copy.deepcopy(value)
    return merged


@dataclass
class PutContext:
    """What a kind's `build` hook sees for one PUT or PATCH."""
    app: "StandinApp"
    request: Request
    kind: "ResourceKind"
    id: str
    name: str
    body: dict
    existing: Resource | None
    parent: Resource | None
    group: Resource | None
    patch: bool = False
    secrets: dict = field(default_factory=dict)
    failure: tuple[str, str] | None = None         # make the LRO end Failed
    remove_on_failure: bool = False                # a failed create leaves nothing behind
    on_stored: list[Callable[[], None]] = field(default_factory=list)    # right after the write is kept
    on_success: list[Callable[[], None]] = field(default_factory=list)   # when the operation succeeds
    on_failure: list[Callable[[], None]] = field(default_factory=list)   # when it fails

    @property
    def properties(self) -> dict:
        props = self.body.get("properties")
        if props is None:
            return {}
        if not isinstance(props, dict):
            raise bad_request("InvalidRequestContent", "The request content 'properties' must be an object.")
        return props

    @property
    def old_properties(self) -> dict:
        return self.existing.properties if self.existing else {}

    @property
    def location(self) -> str:
        return self.body.get("location", "")

    def fail(self, code: str, message: str) -> None:
        self.failure = (code, message)


class ResourceKind:
    """One ARM resource type. Subclasses override the class attributes and hooks."""

    namespace = ""
    path = ""                     # below the provider, e.g. "servers/{serverName}/databases/{name}"
    versions: frozenset[str] = frozenset()
    tracked = True                # has location and tags
    put_lro: str | None = "async"  # None: synchronous; "async": Azure-AsyncOperation; "location": 202 + Location
    sync_update = False           # a PUT on an existing resource answers 200 at once (storage accounts)
    delete_lro = False
    lro_state = "InProgress"      # provisioningState reported while the PUT runs
    latency_key = ""
    has_provisioning_state = True
    created_status = 201          # a few synchronous types answer 200 even on creation

    @property
    def type(self) -> str:
        segments = self.path.split("/")[0::2]
        return f"{self.namespace}/" + "/".join(segments)

    @property
    def short_type(self) -> str:
        return self.path.split("/")[-2]

    # -- hooks --------------------------------------------------------------------------------
    def validate_name(self, name: str) -> None:
        pass

    def build(self, ctx: PutContext) -> dict:
        """Validate the request and return the resource document (id/name/type are added)."""
        return {"properties": dict(ctx.properties)}

    def render(self, res: Resource) -> dict:
        return copy.deepcopy(res.doc)

    def before_delete(self, app: "StandinApp", res: Resource) -> None:
        pass

    def after_delete(self, app: "StandinApp", res: Resource) -> None:
        pass

    # -- ids ------------------------------------------------------------------------------------
    def template(self) -> str:
        return f"{RG_PREFIX}/providers/{self.namespace}/{self.path}"

    def resource_id(self, app: "StandinApp", params: dict, group: Resource | None) -> str:
        rg_part = f"/resourceGroups/{group.doc['name']}" if group else ""
        return f"/subscriptions/{app.subscription_id}{rg_part}/providers/{self.namespace}/" + self.path.format(**params)

    def parent_id(self, rid: str) -> str | None:
        if self.path.count("/") < 2:
            return None
        return rid.rsplit("/", 2)[0]


def register_kind(app: "StandinApp", kind: ResourceKind) -> None:
    router = app.router
    item = kind.template()
    collection = item.rsplit("/", 1)[0]
    opts = dict(versions=kind.versions, namespace=kind.namespace, type_name=kind.short_type)
    router.add("PUT", item, lambda r: put(app, kind, r, patch=False), **opts,
               latency_key=None if kind.put_lro else kind.latency_key)
    router.add("PATCH", item, lambda r: put(app, kind, r, patch=True), **opts)
    router.add("GET", item, lambda r: get(app, kind, r), **opts)
    router.add("DELETE", item, lambda r: delete(app, kind, r), **opts)
    router.add("GET", collection, lambda r: list_(app, kind, r), **opts)
    if kind.path.count("/") == 1:     # top-level types are also listed per subscription
        router.add("GET", f"/subscriptions/{{subscriptionId}}/providers/{kind.namespace}/{kind.path.split('/')[0]}",
                   lambda r: list_(app, kind, r), **opts)


# -- handlers --------------------------------------------------------------------------------------
def put(app: "StandinApp", kind: ResourceKind, req: Request, *, patch: bool) -> Response:
    group = app.require_scope(req, write=True)
    name = req.params["name"]
    rid = kind.resource_id(app, req.params, group)
    existing = app.store.get(rid)
    if patch and existing is None:
        raise resource_not_found(kind, name, req)
    if not patch:
        kind.validate_name(name)
    parent = _require_parent(app, kind, rid)
    if existing is not None and existing.busy:
        raise conflict("AnotherOperationInProgress",
                       f"Another operation on '{kind.type}' '{name}' is in progress. Retry when it has completed.")
    body = req.body if req.body is not None else {}
    if not isinstance(body, dict):
        raise bad_request("InvalidRequestContent", "The request content was invalid and could not be deserialized.")
    if patch:
        body = deep_merge(kind.render(existing), body)
    ctx = PutContext(app, req, kind, rid, existing.doc["name"] if existing else name, body, existing, parent,
                     group, patch=patch, secrets=dict(existing.secrets) if existing else {})
    if kind.tracked:
        _check_location(ctx)
        _check_tags(body.get("tags"))
    doc = kind.build(ctx)
    doc = {"id": rid, "name": ctx.name, "type": kind.type, **doc}
    if kind.tracked:
        doc["location"] = normalize_location(ctx.location)
        doc["tags"] = body.get("tags") or {}
    res = Resource(rid, kind.type, doc, ctx.secrets)
    if req.lro_failure and not ctx.failure:
        ctx.failure = req.lro_failure
    sync = patch or kind.put_lro is None or (existing is not None and kind.sync_update)
    return app.store_put(kind, res, ctx, created=existing is None, sync=sync)


def get(app: "StandinApp", kind: ResourceKind, req: Request) -> Response:
    group = app.require_scope(req)
    rid = kind.resource_id(app, req.params, group)
    res = app.store.get(rid)
    if res is None:
        raise resource_not_found(kind, req.params["name"], req)
    return Response(200, kind.render(res))


def list_(app: "StandinApp", kind: ResourceKind, req: Request) -> Response:
    group = app.require_scope(req)
    under = group.id if group is not None else f"/subscriptions/{app.subscription_id}"
    parent = kind.parent_id(kind.resource_id(app, {**req.params, "name": "_"}, group))
    if parent:
        if app.store.get(parent) is None:
            raise parent_not_found(parent)
        under = parent
    return Response(200, {"value": [kind.render(r) for r in app.store.of_type(kind.type, under)]})


def delete(app: "StandinApp", kind: ResourceKind, req: Request) -> Response:
    group = app.require_scope(req, write=True)
    rid = kind.resource_id(app, req.params, group)
    res = app.store.get(rid)
    if res is None:
        return Response(204)
    if res.busy and res.operation.kind == "delete":
        return app.accepted_delete(req, res.operation)
    if res.busy:
        raise conflict("AnotherOperationInProgress",
                       f"Another operation on '{kind.type}' '{res.doc['name']}' is in progress.")
    kind.before_delete(app, res)
    if not kind.delete_lro:
        app.store.remove(res.id)
        kind.after_delete(app, res)
        return Response(200)
    op = app.begin_delete(req, res, kind.latency_key, on_done=lambda: kind.after_delete(app, res))
    return app.accepted_delete(req, op)


# -- checks shared with custom handlers ---------------------------------------------------------
def _require_parent(app: "StandinApp", kind: ResourceKind, rid: str) -> Resource | None:
    parent_id = kind.parent_id(rid)
    if parent_id is None:
        return None
    parent = app.store.get(parent_id)
    if parent is None:
        raise parent_not_found(parent_id)
    return parent


def parent_not_found(parent_id: str) -> ArmError:
    name = parent_id.rsplit("/", 1)[-1]
    return not_found("ParentResourceNotFound",
                     f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.")


def resource_not_found(kind: ResourceKind, name: str, req: Request) -> ArmError:
    group = req.params.get("resourceGroupName")
    where = f" under resource group '{group}'" if group else ""
    return not_found("ResourceNotFound",
                     f"The Resource '{kind.type}/{name}'{where} was not found. For more details please go to "
                     "https://aka.ms/ARMResourceNotFoundFix")


def _check_location(ctx: PutContext) -> None:
    if not ctx.location:
        raise bad_request("LocationRequired", "The location property is required for this definition.")
    location = normalize_location(ctx.location)
    if location not in LOCATIONS:
        raise bad_request("LocationNotAvailableForResourceType",
                          f"The provided location '{ctx.location}' is not available for resource type "
                          f"'{ctx.kind.type}'. List of available regions for the resource type is "
                          f"'{','.join(sorted(LOCATIONS))}'.")
    if ctx.existing is not None and ctx.existing.doc.get("location") != location:
        group = ctx.request.params.get("resourceGroupName", "")
        raise bad_request("InvalidResourceLocation",
                          f"The resource '{ctx.name}' already exists in location "
                          f"'{ctx.existing.doc.get('location')}' in resource group '{group}'. A resource with the "
                          f"same name cannot be created in location '{location}'. Please select a new resource name.")


def _check_tags(tags: Any) -> None:
    if tags is None:
        return
    if not isinstance(tags, dict):
        raise bad_request("InvalidRequestContent", "The tags must be an object of string values.")
    if len(tags) > 50:
        raise bad_request("InvalidTagCount", "The number of tags exceeds the limit of 50.")
    for key, value in tags.items():
        if not key or len(key) > 512 or _TAG_NAME_FORBIDDEN.search(key):
            raise bad_request("InvalidTagNameCharacters",
                              f"The tag name '{key}' has invalid characters '<,>,%,&,\\,?,/' or is too long.")
        if value is not None and len(str(value)) > 256:
            raise bad_request("InvalidTagValueLength", f"The value of tag '{key}' exceeds 256 characters.")


# -- small validation helpers for providers -------------------------------------------------------
def require(props: dict, key: str, where: str = "properties") -> Any:
    value = props.get(key)
    if value in (None, "", [], {}):
        raise bad_request("MissingRequiredProperty" if where else "InvalidRequestContent",
                          f"The required property '{where + '.' if where else ''}{key}' is missing from the request.")
    return value


def check_enum(value: Any, allowed, what: str, code: str = "InvalidParameterValue") -> Any:
    if value is None:
        return value
    lookup = {str(a).lower(): a for a in allowed}
    if str(value).lower() not in lookup:
        raise bad_request(code, f"The value '{value}' is not valid for {what}. Allowed values are: "
                                f"{', '.join(map(str, allowed))}.")
    return lookup[str(value).lower()]


def check_immutable(ctx: PutContext, path: str, new: Any, old: Any, *, code: str = "PropertyChangeNotAllowed",
                    status: int = 400) -> None:
    if ctx.existing is None or old is None or new is None:
        return
    if str(new).lower() != str(old).lower():
        raise ArmError(status, code, f"Changing property '{path}' is not allowed (from '{old}' to '{new}').")


def name_availability(app: "StandinApp", req: Request, *, resource_type: str, type_error_code: str,
                      problem: Callable[[str], str | None], invalid_reason: str,
                      taken: Callable[[str], bool], taken_message: str) -> Response:
    """A provider's checkNameAvailability: the requested type, the naming rule, then whether
    anyone (in this stand-in or "another customer") holds the name. Providers differ only in
    their codes and wording."""
    app.require_scope(req)
    body = req.body if isinstance(req.body, dict) else {}
    name = str(body.get("name", ""))
    if str(body.get("type", "")).lower() != resource_type.lower():
        raise bad_request(type_error_code, f"The type must be '{resource_type}'.")
    reason = problem(name)
    if reason:
        return Response(200, {"nameAvailable": False, "reason": invalid_reason, "message": reason})
    if taken(name):
        return Response(200, {"nameAvailable": False, "reason": "AlreadyExists",
                              "message": taken_message.format(name=name)})
    return Response(200, {"nameAvailable": True})
