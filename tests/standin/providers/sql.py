"""Microsoft.Sql: logical servers (globally unique names, SQL or Entra administrators), their
Entra administrator and Entra-only settings, firewall rules and databases.

The Entra administrator and Entra-only authentication are child resources
(`servers/{s}/administrators/ActiveDirectory`, `servers/{s}/azureADOnlyAuthentications/Default`).
The server's own `administrators` property only mirrors them: a server GET or list shows it
only with `$expand=administrators/activedirectory`, and a server PUT honours it only when it
creates the server (Servers.json, 2025-01-01; see `Servers.build`).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import TYPE_CHECKING

from ..arm import Request, Response, bad_request
from ..metadata import SUFFIXES
from ..resources import PutContext, ResourceKind, check_enum, check_immutable, get, list_, register_kind
from ..store import Resource, now_iso
from .msi import resolve_identity

if TYPE_CHECKING:
    from ..app import StandinApp

NAMESPACE = "Microsoft.Sql"
SERVER_TYPE = "Microsoft.Sql/servers"
VERSIONS = frozenset({"2014-04-01", "2020-11-01-preview", "2021-02-01-preview", "2021-11-01", "2022-05-01-preview",
                      "2022-08-01-preview", "2023-05-01-preview", "2023-08-01", "2023-08-01-preview", "2024-05-01-preview",
                      "2025-01-01"})
TLS_VERSIONS = ["None", "1.0", "1.1", "1.2", "1.3"]
RESERVED_LOGINS = {"admin", "administrator", "sa", "root", "dbmanager", "loginmanager", "dbo", "guest", "public"}
_SERVER_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DB_NAME_FORBIDDEN = re.compile(r"[<>*%&:\\/?]")
ADMIN_TYPE = "Microsoft.Sql/servers/administrators"
ENTRA_ONLY_TYPE = "Microsoft.Sql/servers/azureADOnlyAuthentications"
# Servers_Get / Servers_List / Servers_ListByResourceGroup: "$expand: The child resources to
# include in the response"; the spec's examples use exactly this value.
EXPAND_ADMINISTRATORS = "administrators/activedirectory"
_ADMIN_FIELDS = ("administratorType", "login", "sid", "tenantId")
_SKU = re.compile(r"^(Basic|S\d+|P\d+|Free|(GP|BC|HS)(_S)?_(Gen5|Gen4|DC|FSv2|M)(_\d+)?)$")
TIERS = {"GP": "GeneralPurpose", "BC": "BusinessCritical", "HS": "Hyperscale"}


def _is_guid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def _check_password(password: str) -> None:
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^a-zA-Z0-9]"))
    if not 8 <= len(password) <= 128 or classes < 3:
        raise bad_request("PasswordNotComplex",
                          "Password validation failed. The password does not meet policy requirements because it is "
                          "not complex enough.")


def _check_administrators(admins: dict, app: "StandinApp") -> dict:
    check_enum(admins.get("administratorType", "ActiveDirectory"), ["ActiveDirectory"],
               "administrators.administratorType")
    principal_type = check_enum(admins.get("principalType"), ["User", "Group", "Application"],
                                "administrators.principalType")
    for key in ("login", "sid"):
        if not admins.get(key):
            raise bad_request("InvalidParameterValue", f"Invalid value given for parameter administrators.{key}.")
    for key in ("sid", "tenantId"):
        if admins.get(key) and not _is_guid(admins[key]):
            raise bad_request("InvalidParameterValue", f"Invalid value given for parameter administrators.{key}: "
                                                       "it must be a GUID.")
    return {"administratorType": "ActiveDirectory", "principalType": principal_type, "login": admins["login"],
            "sid": str(admins["sid"]).lower(), "tenantId": str(admins.get("tenantId") or app.tenant_id).lower(),
            "azureADOnlyAuthentication": bool(admins.get("azureADOnlyAuthentication", False))}


def _principal_type(app: "StandinApp", sid: str) -> str:
    """What Azure resolves from Entra for an administrator's sid. The stand-in's directory
    holds only managed identities (applications: their sid is the client id) and the operator."""
    return "Application" if app.find_identity(client_id=sid) else "User"


def current_administrators(app: "StandinApp", server_id: str) -> dict | None:
    """The server's `administrators` as Azure assembles it from the two child resources."""
    admin = app.store.get(server_id + "/administrators/ActiveDirectory")
    if admin is None:
        return None
    props = admin.properties
    return {**{k: props[k] for k in _ADMIN_FIELDS}, "principalType": _principal_type(app, props["sid"]),
            "azureADOnlyAuthentication": _entra_only(app, server_id)}


def _entra_only(app: "StandinApp", server_id: str) -> bool:
    setting = app.store.get(server_id + "/azureADOnlyAuthentications/Default")
    return bool(setting and setting.properties.get("azureADOnlyAuthentication"))


def _administrators_change(sent: dict, current: dict | None) -> list[str]:
    if current is None:
        return ["administrators"]
    changed = [k for k in (*_ADMIN_FIELDS, "azureADOnlyAuthentication")
               if str(sent[k]).lower() != str(current[k]).lower()]
    if sent.get("principalType") and sent["principalType"] != current["principalType"]:
        changed.append("principalType")
    return changed


def _refuse_administrators_update(changed: list[str]) -> None:
    # Servers.json 2025-01-01, ServerProperties.administrators: x-ms-mutability ["read", "create"];
    # "can be utilized during server creation and for server updates, except for the
    # azureADOnlyAuthentication property. To update the azureADOnlyAuthentication property,
    # individual API must be used." 2023-08-01 (same mutability) says "This can only be used at
    # server create time. If used for server update, it will be ignored or it will result in
    # an error. For updates individual APIs will need to be used." What Azure does with a
    # changed value is unverified: the stand-in takes the stricter reading and refuses any
    # change (an unchanged or omitted one is accepted). The code for azureADOnlyAuthentication
    # is the one ServerAzureADAdministrators.json lists for it; the other is a plausible guess.
    if changed == ["azureADOnlyAuthentication"]:
        raise bad_request("InvalidServerAzureADOnlyAuthenticationParameter",
                          "Microsoft Entra-only authentication cannot be changed through the server: use the "
                          "azureADOnlyAuthentications API instead.")
    raise bad_request("InvalidParameterValue",
                      "The server's administrators can only be set when the server is created (changed: "
                      f"{', '.join(changed)}): use the administrators/ActiveDirectory and "
                      "azureADOnlyAuthentications/Default APIs instead.")


def _with_expand(app: "StandinApp", req: Request, doc: dict) -> dict:
    """A server as GET shows it: `administrators` only when the caller asked for it."""
    if str(req.query.get("$expand", "")).lower() == EXPAND_ADMINISTRATORS:
        admins = current_administrators(app, doc["id"])
        if admins:
            doc.setdefault("properties", {})["administrators"] = admins
    return doc


class Servers(ResourceKind):
    namespace = NAMESPACE
    path = "servers/{name}"
    versions = VERSIONS
    lro_state = "InProgress"
    latency_key = "servers"
    delete_lro = True

    def validate_name(self, name: str) -> None:
        if not _SERVER_NAME.match(name):
            raise bad_request("InvalidResourceName",
                              f"Server name '{name}' is invalid: it must be 1 to 63 lower-case letters, digits and "
                              "'-', and cannot start or end with '-'.")

    def build(self, ctx: PutContext) -> dict:
        props, old = ctx.properties, ctx.old_properties
        if ctx.existing is None:
            others = {r.doc["name"].lower() for r in ctx.app.store.of_type(SERVER_TYPE)}
            if ctx.name.lower() in others | ctx.app.store.taken_elsewhere.get("sql", set()):
                # SQL accepts the request and fails the operation, as the real service does.
                ctx.fail("NameAlreadyExists", f"The name '{ctx.name}' already exists. Choose a different name.")
                ctx.remove_on_failure = True
        version = check_enum(props.get("version", old.get("version", "12.0")), ["12.0"], "properties.version")
        tls = check_enum(props.get("minimalTlsVersion", old.get("minimalTlsVersion", "1.2")), TLS_VERSIONS,
                         "properties.minimalTlsVersion")
        access = check_enum(props.get("publicNetworkAccess", old.get("publicNetworkAccess", "Enabled")),
                            ["Enabled", "Disabled", "SecuredByPerimeter"], "properties.publicNetworkAccess")
        login = props.get("administratorLogin")
        password = props.get("administratorLoginPassword")
        admins = _check_administrators(props["administrators"], ctx.app) if props.get("administrators") else None
        check_immutable(ctx, "properties.administratorLogin", login, old.get("administratorLogin"),
                        code="InvalidParameterValue")
        if ctx.existing is None:
            entra_only = bool(admins and admins["azureADOnlyAuthentication"])
            if not entra_only and not (login and password):
                raise bad_request("InvalidParameterValue",
                                  "Invalid value given for parameter Login. Specify a valid parameter value: a server "
                                  "needs administratorLogin and administratorLoginPassword unless Microsoft Entra-only "
                                  "authentication is enabled with an Entra administrator.")
        elif admins is not None:
            changed = _administrators_change(admins, current_administrators(ctx.app, ctx.id))
            if changed:
                _refuse_administrators_update(changed)
        if login is not None:
            if login.lower() in RESERVED_LOGINS or not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,127}$", login):
                raise bad_request("InvalidLoginName",
                                  f"Login '{login}' is not a valid login name or is reserved: use letters, digits "
                                  "and '_', starting with a letter, and none of admin, administrator, sa, root, "
                                  "dbmanager, loginmanager, dbo, guest, public.")
        if password is not None:
            _check_password(password)
            ctx.secrets["administratorLoginPassword"] = password
        # `administrators` is not kept on the server: the child resources hold it.
        out = {k: v for k, v in old.items() if k != "administrators"}
        out.update({k: v for k, v in props.items()
                    if k not in ("administratorLoginPassword", "provisioningState", "administrators")})
        out.update({"version": version, "minimalTlsVersion": tls, "publicNetworkAccess": access, "state": "Ready",
                    "fullyQualifiedDomainName": f"{ctx.name}.{SUFFIXES['sqlServerHostname']}"})
        if login or old.get("administratorLogin"):
            out["administratorLogin"] = login or old["administratorLogin"]
        out.pop("provisioningState", None)
        if ctx.existing is None:
            ctx.on_success.append(lambda: _create_children(ctx.app, ctx.id, ctx.location, admins))
        doc = {"kind": "v12.0", "properties": out}
        identity = resolve_identity(ctx.app, ctx.body.get("identity"), ctx.id)
        if identity:
            doc["identity"] = identity
        return doc


def _create_children(app: "StandinApp", server_id: str, location: str, admins: dict | None) -> None:
    """What a server's creation brings with it: its master database, the Entra-only setting and,
    when `administrators` was sent, the Entra administrator."""
    _master_database(app, server_id, location)
    if admins:
        _store_admin(app, server_id, admins)
    _store_entra_only(app, server_id, bool(admins and admins["azureADOnlyAuthentication"]))


def _store_admin(app: "StandinApp", server_id: str, admins: dict) -> None:
    rid = server_id + "/administrators/ActiveDirectory"
    app.store.put(Resource(rid, ADMIN_TYPE, {
        "id": rid, "name": "ActiveDirectory", "type": ADMIN_TYPE,
        "properties": {**{k: admins[k] for k in _ADMIN_FIELDS},
                       "azureADOnlyAuthentication": admins["azureADOnlyAuthentication"]}}))


def _store_entra_only(app: "StandinApp", server_id: str, value: bool) -> None:
    rid = server_id + "/azureADOnlyAuthentications/Default"
    app.store.put(Resource(rid, ENTRA_ONLY_TYPE, {
        "id": rid, "name": "Default", "type": ENTRA_ONLY_TYPE,
        "properties": {"azureADOnlyAuthentication": value}}))


def _master_database(app: "StandinApp", server_id: str, location: str) -> None:
    # Every logical server has a read-only master database, listed with the user databases.
    rid = server_id + "/databases/master"
    if app.store.get(rid) is None:
        app.store.put(Resource(rid, "Microsoft.Sql/servers/databases", {
            "id": rid, "name": "master", "type": "Microsoft.Sql/servers/databases", "kind": "v12.0,system",
            "location": location.replace(" ", "").lower(), "tags": {}, "sku": {"name": "System", "tier": "System"},
            "properties": {"status": "Online", "collation": "SQL_Latin1_General_CP1_CI_AS",
                           "provisioningState": "Succeeded", "databaseId": str(uuid.uuid4())}}))


class Administrators(ResourceKind):
    """ServerAzureADAdministrators.json (2025-01-01): PUT and DELETE are long-running (202 with
    Location; 200/201 on PUT, 200/204 on DELETE); AdministratorProperties has login and sid
    (required), administratorType, tenantId, and azureADOnlyAuthentication read-only. No
    provisioningState."""

    namespace = NAMESPACE
    path = "servers/{serverName}/administrators/{name}"
    versions = VERSIONS
    tracked = False
    put_lro = "location"
    latency_key = "administrators"
    delete_lro = True
    has_provisioning_state = False

    def validate_name(self, name: str) -> None:
        if name != "ActiveDirectory":
            raise bad_request("InvalidResourceName", "The administrator name must be 'ActiveDirectory'.")

    def build(self, ctx: PutContext) -> dict:
        props = ctx.properties
        if props.get("administratorType", "ActiveDirectory") != "ActiveDirectory":
            raise bad_request("InvalidServerAdministratorTypePropertyName",
                              "Server active directory administrator type should be ActiveDirectory.")
        admins = _check_administrators({**props, "principalType": None}, ctx.app)
        # Read-only here: a copy of the Entra-only setting, which its own resource holds.
        return {"properties": {**{k: admins[k] for k in _ADMIN_FIELDS},
                               "azureADOnlyAuthentication": _entra_only(ctx.app, ctx.id.rsplit("/", 2)[0])}}

    def before_delete(self, app: "StandinApp", res: Resource) -> None:
        if _entra_only(app, res.id.rsplit("/", 2)[0]):
            raise bad_request("InvalidServerAzureADAdminDeleteOperation",
                              "The Microsoft Entra administrator cannot be removed while Microsoft Entra-only "
                              "authentication is enabled: use the azureADOnlyAuthentications API first.")


class EntraOnlyAuthentications(ResourceKind):
    """ServerAzureADOnlyAuthentications.json (2025-01-01): PUT and DELETE are long-running like
    the administrator's; AzureADOnlyAuthProperties is only `azureADOnlyAuthentication` (required)."""

    namespace = NAMESPACE
    path = "servers/{serverName}/azureADOnlyAuthentications/{name}"
    versions = VERSIONS
    tracked = False
    put_lro = "location"
    latency_key = "administrators"
    delete_lro = True
    has_provisioning_state = False

    def validate_name(self, name: str) -> None:
        if name != "Default":
            raise bad_request("InvalidServerAADOnlyAuthTypePropertyName",
                              "Server Azure Active Directory only authentication type should be Default.")

    def build(self, ctx: PutContext) -> dict:
        value = ctx.properties.get("azureADOnlyAuthentication")
        if not isinstance(value, bool):
            raise bad_request("InvalidParameterValue", "properties.azureADOnlyAuthentication must be true or false.")
        server_id = ctx.id.rsplit("/", 2)[0]
        if ctx.app.store.get(server_id + "/administrators/ActiveDirectory") is None:
            raise bad_request("InvalidServerAADOnlyAuthNoAADAdminPropertyName",
                              "AAD Admin is not configured, AAD Admin must be set before enabling/disabling AAD Only "
                              "Authentication.")
        if not value and not ctx.parent.properties.get("administratorLogin"):
            raise bad_request("InvalidParameterValue",
                              "Microsoft Entra-only authentication cannot be disabled on a server that has no SQL "
                              "administrator login.")
        ctx.on_success.append(lambda: _mirror_entra_only(ctx.app, server_id, value))
        return {"properties": {"azureADOnlyAuthentication": value}}


def _mirror_entra_only(app: "StandinApp", server_id: str, value: bool) -> None:
    admin = app.store.get(server_id + "/administrators/ActiveDirectory")
    if admin is not None:
        admin.properties["azureADOnlyAuthentication"] = value


class FirewallRules(ResourceKind):
    namespace = NAMESPACE
    path = "servers/{serverName}/firewallRules/{name}"
    versions = VERSIONS
    tracked = False
    put_lro = None
    latency_key = "firewallRules"
    has_provisioning_state = False

    def validate_name(self, name: str) -> None:
        if not 1 <= len(name) <= 128 or _DB_NAME_FORBIDDEN.search(name):
            raise bad_request("InvalidResourceName", f"Firewall rule name '{name}' is invalid.")

    def build(self, ctx: PutContext) -> dict:
        props = ctx.properties
        addresses = []
        for key in ("startIpAddress", "endIpAddress"):
            try:
                addresses.append(ipaddress.IPv4Address(str(props.get(key))))
            except ValueError:
                raise bad_request("InvalidParameterValue",
                                  f"Invalid value given for parameter {key}: '{props.get(key)}' is not an IPv4 "
                                  "address.") from None
        if addresses[0] > addresses[1]:
            raise bad_request("InvalidParameterValue",
                              "The start IP address of the firewall rule cannot exceed the end IP address.")
        return {"properties": {"startIpAddress": str(addresses[0]), "endIpAddress": str(addresses[1])}}


class Databases(ResourceKind):
    namespace = NAMESPACE
    path = "servers/{serverName}/databases/{name}"
    versions = VERSIONS
    lro_state = "InProgress"
    latency_key = "databases"
    delete_lro = True

    def validate_name(self, name: str) -> None:
        if not 1 <= len(name) <= 128 or _DB_NAME_FORBIDDEN.search(name) or name.endswith((".", " ")):
            raise bad_request("InvalidResourceName", f"Database name '{name}' is invalid.")

    def build(self, ctx: PutContext) -> dict:
        if ctx.name.lower() == "master":
            raise bad_request("InvalidResourceName",
                              "The database 'master' is a system database and cannot be changed.")
        if ctx.location.replace(" ", "").lower() != ctx.parent.doc["location"]:
            raise bad_request("InvalidParameterValue",
                              f"The database location '{ctx.location}' must be the server's location "
                              f"'{ctx.parent.doc['location']}'.")
        props, old = ctx.properties, ctx.old_properties
        sku = ctx.body.get("sku") or (ctx.existing.doc.get("sku") if ctx.existing else None) or {
            "name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2}
        name = str(sku.get("name", ""))
        if not _SKU.match(name):
            raise bad_request("InvalidParameterValue",
                              f"The sku name '{name}' is not valid for a database.")
        family_tier = TIERS.get(name.split("_")[0])
        if family_tier and sku.get("tier") and sku["tier"] != family_tier:
            raise bad_request("InvalidParameterValue",
                              f"The sku tier '{sku['tier']}' does not match the sku name '{name}' "
                              f"(expected '{family_tier}').")
        serverless = "_S_" in name
        capacity = sku.get("capacity")
        if capacity is not None and (not isinstance(capacity, (int, float)) or capacity <= 0):
            raise bad_request("InvalidParameterValue", f"The sku capacity '{capacity}' is invalid.")
        pause = props.get("autoPauseDelay", old.get("autoPauseDelay"))
        min_capacity = props.get("minCapacity", old.get("minCapacity"))
        if not serverless and (props.get("autoPauseDelay") is not None or props.get("minCapacity") is not None):
            raise bad_request("InvalidParameterValue",
                              "autoPauseDelay and minCapacity can only be set on serverless (GP_S_*) databases.")
        if serverless:
            if pause is not None and pause != -1 and not (isinstance(pause, int) and 15 <= pause <= 10080):
                raise bad_request("InvalidParameterValue",
                                  f"The auto pause delay '{pause}' is invalid: use -1 (disabled) or 15 to 10080 "
                                  "minutes.")
            if min_capacity is not None and (min_capacity < 0.5 or (capacity and min_capacity > capacity)):
                raise bad_request("InvalidParameterValue",
                                  f"The min capacity '{min_capacity}' must be at least 0.5 and at most the sku "
                                  "capacity.")
        out = {**old, **{k: v for k, v in props.items() if k != "provisioningState"}}
        out.update({"status": "Online", "collation": props.get("collation", old.get("collation",
                                                                                     "SQL_Latin1_General_CP1_CI_AS")),
                    "creationDate": old.get("creationDate") or now_iso(),
                    "databaseId": old.get("databaseId") or str(uuid.uuid4()),
                    "currentServiceObjectiveName": name, "currentSku": dict(sku)})
        if serverless:
            out.setdefault("autoPauseDelay", 60)
            out.setdefault("minCapacity", 0.5)
        return {"sku": dict(sku), "kind": "v12.0,user,vcore,serverless" if serverless else "v12.0,user",
                "properties": out}

    def before_delete(self, app: "StandinApp", res: Resource) -> None:
        if res.doc["name"].lower() == "master":
            raise bad_request("InvalidResourceName", "The database 'master' is a system database and cannot be deleted.")


def register(app: "StandinApp") -> None:
    servers = Servers()
    _register_server_reads(app, servers)
    for kind in (servers, Administrators(), EntraOnlyAuthentications(), FirewallRules(), Databases()):
        register_kind(app, kind)
    app.router.add("POST", "/subscriptions/{subscriptionId}/providers/Microsoft.Sql/checkNameAvailability",
                   lambda r: check_name(app, r), versions=VERSIONS, namespace=NAMESPACE, type_name="servers")


def _register_server_reads(app: "StandinApp", kind: Servers) -> None:
    """Server GET and lists honour `$expand`. Registered before the generic routes, which the
    router would otherwise match first."""
    item = kind.template()
    opts = dict(versions=kind.versions, namespace=NAMESPACE, type_name=kind.short_type)

    def one(req: Request) -> Response:
        response = get(app, kind, req)
        return Response(response.status, _with_expand(app, req, response.body), response.headers)

    def many(req: Request) -> Response:
        response = list_(app, kind, req)
        return Response(response.status, {"value": [_with_expand(app, req, doc) for doc in response.body["value"]]},
                        response.headers)

    app.router.add("GET", item, one, **opts)
    app.router.add("GET", item.rsplit("/", 1)[0], many, **opts)
    app.router.add("GET", f"/subscriptions/{{subscriptionId}}/providers/{NAMESPACE}/servers", many, **opts)


def check_name(app: "StandinApp", req: Request) -> Response:
    app.require_scope(req)
    body = req.body if isinstance(req.body, dict) else {}
    name = str(body.get("name", ""))
    if not _SERVER_NAME.match(name):
        return Response(200, {"name": name, "available": False, "reason": "Invalid",
                              "message": f"Specified server name '{name}' is not valid."})
    used = {r.doc["name"].lower() for r in app.store.of_type(SERVER_TYPE)} | app.store.taken_elsewhere.get("sql", set())
    if name.lower() in used:
        return Response(200, {"name": name, "available": False, "reason": "AlreadyExists",
                              "message": f"Specified server name '{name}' is already used."})
    return Response(200, {"name": name, "available": True})
