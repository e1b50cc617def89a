"""ARM's own resources: the subscription, resource groups, provider registration, and the
operation-status links that every long-running operation hands out."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..arm import ARM_NAMESPACE, Request, Response, bad_request, conflict, not_found
from ..resources import LOCATIONS, normalize_location
from ..store import Resource

if TYPE_CHECKING:
    from ..app import StandinApp

# Real versions of Microsoft.Resources; the auto-registration policy of azure-mgmt-core uses 2016-02-01.
VERSIONS = {"2016-02-01", "2016-09-01", "2018-05-01", "2019-10-01", "2020-06-01", "2021-04-01",
            "2022-09-01", "2022-12-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-01-01",
            "2025-03-01", "2025-04-01"}
NAMESPACES = ["Microsoft.Resources", "Microsoft.ManagedIdentity", "Microsoft.OperationalInsights",
              "Microsoft.Storage", "Microsoft.ContainerRegistry", "Microsoft.Sql", "Microsoft.App",
              "Microsoft.Authorization"]
_RG_NAME = re.compile(r"^[-\w.()]{1,90}$")
SUB = "/subscriptions/{subscriptionId}"


def register(app: "StandinApp") -> None:
    add = app.router.add
    arm = dict(versions=VERSIONS, namespace=ARM_NAMESPACE)
    add("GET", SUB, lambda r: subscription(app, r), **arm, type_name="subscriptions")
    add("GET", "/subscriptions", lambda r: Response(200, {"value": [_subscription_doc(app)]}), **arm,
        type_name="subscriptions")
    add("GET", SUB + "/locations", lambda r: list_locations(app, r), **arm, type_name="locations")
    rg = SUB + "/resourcegroups/{resourceGroupName}"
    add("HEAD", rg, lambda r: group_exists(app, r), **arm, type_name="resourceGroups")
    add("GET", rg, lambda r: get_group(app, r), **arm, type_name="resourceGroups")
    add("PUT", rg, lambda r: put_group(app, r), **arm, type_name="resourceGroups", latency_key="resourceGroups")
    add("PATCH", rg, lambda r: patch_group(app, r), **arm, type_name="resourceGroups")
    add("DELETE", rg, lambda r: delete_group(app, r), **arm, type_name="resourceGroups")
    add("GET", SUB + "/resourcegroups", lambda r: list_groups(app, r), **arm, type_name="resourceGroups")
    add("GET", rg + "/resources", lambda r: list_group_resources(app, r), **arm, type_name="resources")
    add("POST", SUB + "/providers/{namespace}/register", lambda r: register_provider(app, r), **arm,
        type_name="providers")
    add("GET", SUB + "/providers/{namespace}", lambda r: get_provider(app, r), **arm, type_name="providers")
    add("GET", SUB + "/providers", lambda r: list_providers(app, r), **arm, type_name="providers")
    ops = dict(versions=None, namespace=ARM_NAMESPACE, type_name="operations")
    add("GET", SUB + "/providers/{namespace}/locations/{location}/operationStatuses/{operationId}",
        lambda r: operation_status(app, r), **ops)
    add("GET", SUB + "/providers/{namespace}/locations/{location}/operationResults/{operationId}",
        lambda r: operation_result(app, r), **ops)


def _subscription_doc(app: "StandinApp") -> dict:
    return {"id": f"/subscriptions/{app.subscription_id}", "subscriptionId": app.subscription_id,
            "tenantId": app.tenant_id, "displayName": "Azure stand-in subscription", "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"},
            "authorizationSource": "RoleBased"}


# Subscriptions_ListLocations (azure-rest-api-specs, Microsoft.Resources/subscriptions/stable/
# 2022-12-01/examples/GetLocations.json): {"value": [Location]}, one page (LocationListResult has
# no nextLink), each with id, name, type "Region", displayName, regionalDisplayName, metadata.
_REGION_WORDS = ("central", "north", "south", "east", "west", "europe", "asia", "africa", "australia", "brazil",
                 "canada", "france", "germany", "india", "italy", "japan", "korea", "norway", "poland", "sweden",
                 "switzerland", "uae", "uk", "us")


def _display_name(name: str) -> str:
    words, rest = [], name
    while rest:
        word = next((w for w in _REGION_WORDS if rest.startswith(w)), None) or re.match(r"\d+|.", rest).group()
        words.append(word.upper() if word in ("us", "uk", "uae") else word.capitalize())
        rest = rest[len(word):]
    return " ".join(words)


def list_locations(app: "StandinApp", req: Request) -> Response:
    app.require_subscription(req)
    sub = f"/subscriptions/{app.subscription_id}"
    value = [{"id": f"{sub}/locations/{name}", "name": name, "type": "Region", "displayName": _display_name(name),
              "regionalDisplayName": _display_name(name),
              "metadata": {"regionType": "Physical", "regionCategory": "Recommended"}}
             for name in sorted(LOCATIONS)]
    return Response(200, {"value": value})


def subscription(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)
    return Response(200, _subscription_doc(app))


# -- resource groups -------------------------------------------------------------------------------
def group_exists(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)      # 404 ResourceGroupNotFound when absent; HEAD answers carry no body
    return Response(204)


def get_group(app: "StandinApp", req: Request) -> Response:
    return Response(200, app.require_scope(req).doc)


def put_group(app: "StandinApp", req: Request) -> Response:
    name = req.params["resourceGroupName"]
    app.require_subscription(req)
    if not _RG_NAME.match(name) or name.endswith("."):
        raise bad_request("InvalidResourceGroup",
                          f"The provided resource group name '{name}' has these invalid characters or length. "
                          "The name can only be a letter, digit, '-', '.', '(', ')' or '_', up to 90 "
                          "characters, and cannot end with '.'.")
    body = req.body if isinstance(req.body, dict) else {}
    location = body.get("location")
    if not location:
        raise bad_request("LocationRequired", "The location property is required for this definition.")
    location = normalize_location(location)
    if location not in LOCATIONS:
        raise bad_request("LocationNotAvailableForResourceGroup",
                          f"The provided location '{body['location']}' is not available for resource group. "
                          f"List of available regions is '{','.join(sorted(LOCATIONS))}'.")
    existing = app.store.get(app.group_id(name))
    if existing is not None:
        if existing.busy and existing.operation.kind == "delete":
            raise conflict("ResourceGroupBeingDeleted",
                           f"The resource group '{existing.doc['name']}' is in deprovisioning state and "
                           "cannot perform this operation.")
        if existing.doc["location"] != location:
            raise bad_request("InvalidResourceGroupLocation",
                              f"Invalid resource group location '{location}'. The Resource group already exists "
                              f"in location '{existing.doc['location']}'.")
        existing.doc["tags"] = body.get("tags") or {}
        return Response(200, existing.doc)
    rid = app.group_id(name)
    doc = {"id": rid, "name": name, "type": "Microsoft.Resources/resourceGroups", "location": location,
           "tags": body.get("tags") or {}, "properties": {"provisioningState": "Succeeded"}}
    if body.get("managedBy"):
        doc["managedBy"] = body["managedBy"]
    app.store.put(Resource(rid, "Microsoft.Resources/resourceGroups", doc))
    return Response(201, doc)


def patch_group(app: "StandinApp", req: Request) -> Response:
    group = app.require_scope(req, write=True)
    body = req.body if isinstance(req.body, dict) else {}
    if "tags" in body:
        group.doc["tags"] = body["tags"] or {}
    return Response(200, group.doc)


def delete_group(app: "StandinApp", req: Request) -> Response:
    group = app.require_scope(req)
    op = group.operation if group.busy and group.operation.kind == "delete" else \
        app.begin_delete(req, group, "resourceGroups")
    return Response(202, None, {"Location": app.operation_url(req, op, "Microsoft.Resources", "global",
                                                              "operationResults")})


def list_groups(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)
    return Response(200, {"value": [g.doc for g in app.store.of_type("Microsoft.Resources/resourceGroups")]})


def list_group_resources(app: "StandinApp", req: Request) -> Response:
    group = app.require_scope(req)
    # Only top-level resources are listed (children such as databases are not, as in ARM).
    items = [r for r in app.store.resources.values()
             if r.id.lower().startswith(group.id.lower() + "/providers/") and r.id.count("/") == 8]
    return Response(200, {"value": [{k: r.doc[k] for k in ("id", "name", "type", "location", "tags")
                                     if k in r.doc} for r in items]})


# -- providers -------------------------------------------------------------------------------------
def _provider_doc(app: "StandinApp", namespace: str) -> dict:
    state = "NotRegistered" if namespace.lower() in app.store.unregistered else "Registered"
    return {"id": f"/subscriptions/{app.subscription_id}/providers/{namespace}", "namespace": namespace,
            "registrationState": state, "registrationPolicy": "RegistrationRequired", "resourceTypes": []}


def register_provider(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)
    namespace = _known_namespace(req.params["namespace"])
    app.store.unregistered.discard(namespace.lower())
    return Response(200, _provider_doc(app, namespace))


def get_provider(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)
    return Response(200, _provider_doc(app, _known_namespace(req.params["namespace"])))


def list_providers(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)
    return Response(200, {"value": [_provider_doc(app, ns) for ns in NAMESPACES]})


def _known_namespace(namespace: str) -> str:
    for known in NAMESPACES:
        if known.lower() == namespace.lower():
            return known
    raise not_found("InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")


# -- operation status --------------------------------------------------------------------------------
def _operation(app: "StandinApp", req: Request):
    app.require_scope(req)
    op = app.store.operations.get(req.params["operationId"])
    if op is None:
        raise not_found("OperationNotFound", f"The operation '{req.params['operationId']}' was not found.")
    return op


def operation_status(app: "StandinApp", req: Request) -> Response:
    return Response(200, _operation(app, req).document())


def operation_result(app: "StandinApp", req: Request) -> Response:
    """Location protocol: 202 while running; then the result (200), nothing (204) or the error."""
    op = _operation(app, req)
    if op.status == "InProgress":
        return Response(202, None, {"Location": f"{req.base_url}{req.path}?api-version={req.api_version}"})
    if op.status == "Failed":
        code, message = op.failure
        return Response(400, {"error": {"code": code, "message": message}})
    if op.result is None:
        return Response(200 if op.kind == "delete" else 204)
    return Response(200, op.result())
