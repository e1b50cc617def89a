"""Microsoft.Sql: logical servers (globally unique names, SQL or Entra administrators), their
Entra administrator and Entra-only settings, firewall rules and databases."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import TYPE_CHECKING

from ..arm import Request, Response, bad_request
from ..metadata import SUFFIXES
from ..resources import PutContext, ResourceKind, check_enum, check_immutable, register_kind
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
            "sid": str(admins["sid"]).lower(), "tenantId": admins.get("tenantId") or app.tenant_id,
            "azureADOnlyAuthentication": bool(admins.get("azureADOnlyAuthentication", False))}


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
        if login is not None:
            if login.lower() in RESERVED_LOGINS or not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,127}$", login):
                raise bad_request("InvalidLoginName",
                                  f"Login '{login}' is not a valid login name or is reserved: use letters, digits "
                                  "and '_', starting with a letter, and none of admin, administrator, sa, root, "
                                  "dbmanager, loginmanager, dbo, guest, public.")
        if password is not None:
            _check_password(password)
            ctx.secrets["administratorLoginPassword"] = password
        out = {k: v for k, v in old.items() if k not in ("administrators",)}
        out.update({k: v for k, v in props.items() if k not in ("administratorLoginPassword", "provisioningState")})
        out.update({"version": version, "minimalTlsVersion": tls, "publicNetworkAccess": access, "state": "Ready",
                    "fullyQualifiedDomainName": f"{ctx.name}.{SUFFIXES['sqlServerHostname']}"})
        if login or old.get("administratorLogin"):
            out["administratorLogin"] = login or old["administratorLogin"]
        if admins:
            out["administrators"] = admins
            ctx.on_success.append(lambda: _store_admin(ctx.app, ctx.id, admins))
        elif old.get("administrators"):
            out["administrators"] = old["administrators"]
        out.pop("provisioningState", None)
        ctx.on_success.append(lambda: _master_database(ctx.app, ctx.id, ctx.location))
        ctx.on_success.append(lambda: _store_entra_only(ctx.app, ctx.id, bool(
            (out.get("administrators") or {}).get("azureADOnlyAuthentication"))))
        doc = {"kind": "v12.0", "properties": out}
        identity = resolve_identity(ctx.app, ctx.body.get("identity"), ctx.id)
        if identity:
            doc["identity"] = identity
        return doc


def _store_admin(app: "StandinApp", server_id: str, admins: dict) -> None:
    rid = server_id + "/administrators/ActiveDirectory"
    app.store.put(Resource(rid, "Microsoft.Sql/servers/administrators", {
        "id": rid, "name": "ActiveDirectory", "type": "Microsoft.Sql/servers/administrators",
        "properties": {k: admins[k] for k in ("administratorType", "login", "sid", "tenantId",
                                              "azureADOnlyAuthentication")}}))


def _store_entra_only(app: "StandinApp", server_id: str, value: bool) -> None:
    rid = server_id + "/azureADOnlyAuthentications/Default"
    app.store.put(Resource(rid, "Microsoft.Sql/servers/azureADOnlyAuthentications", {
        "id": rid, "name": "Default", "type": "Microsoft.Sql/servers/azureADOnlyAuthentications",
        "properties": {"azureADOnlyAuthentication": value, "provisioningState": "Succeeded"}}))


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
    namespace = NAMESPACE
    path = "servers/{serverName}/administrators/{name}"
    versions = VERSIONS
    tracked = False
    latency_key = "administrators"
    delete_lro = True

    def validate_name(self, name: str) -> None:
        if name != "ActiveDirectory":
            raise bad_request("InvalidResourceName", "The administrator name must be 'ActiveDirectory'.")

    def build(self, ctx: PutContext) -> dict:
        admins = _check_administrators({**ctx.properties, "principalType": ctx.properties.get("principalType", "User")},
                                       ctx.app)
        admins.pop("principalType")
        admins["azureADOnlyAuthentication"] = ctx.parent.properties.get("administrators", {}).get(
            "azureADOnlyAuthentication", False)
        ctx.on_success.append(lambda: ctx.parent.properties.setdefault("administrators", {}).update(
            {**admins, "principalType": ctx.properties.get("principalType", "User")}))
        return {"properties": admins}

    def before_delete(self, app: "StandinApp", res: Resource) -> None:
        server = app.store.get(res.id.rsplit("/", 2)[0])
        if server.properties.get("administrators", {}).get("azureADOnlyAuthentication"):
            raise bad_request("InvalidParameterValue",
                              "The Microsoft Entra administrator cannot be removed while Microsoft Entra-only "
                              "authentication is enabled.")

    def after_delete(self, app: "StandinApp", res: Resource) -> None:
        server = app.store.get(res.id.rsplit("/", 2)[0])
        if server is not None:
            server.properties.pop("administrators", None)


class EntraOnlyAuthentications(ResourceKind):
    namespace = NAMESPACE
    path = "servers/{serverName}/azureADOnlyAuthentications/{name}"
    versions = VERSIONS
    tracked = False
    latency_key = "administrators"

    def validate_name(self, name: str) -> None:
        if name != "Default":
            raise bad_request("InvalidResourceName", "The Entra-only authentication name must be 'Default'.")

    def build(self, ctx: PutContext) -> dict:
        value = ctx.properties.get("azureADOnlyAuthentication")
        if not isinstance(value, bool):
            raise bad_request("InvalidParameterValue", "properties.azureADOnlyAuthentication must be true or false.")
        admins = ctx.parent.properties.get("administrators")
        if value and not admins:
            raise bad_request("InvalidParameterValue",
                              "Microsoft Entra-only authentication cannot be enabled without a Microsoft Entra "
                              "administrator.")
        if not value and not ctx.parent.properties.get("administratorLogin"):
            raise bad_request("InvalidParameterValue",
                              "Microsoft Entra-only authentication cannot be disabled on a server that has no SQL "
                              "administrator login.")
        ctx.on_success.append(lambda: admins and admins.update({"azureADOnlyAuthentication": value}))
        return {"properties": {"azureADOnlyAuthentication": value}}


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
    for kind in (Servers(), Administrators(), EntraOnlyAuthentications(), FirewallRules(), Databases()):
        register_kind(app, kind)
    app.router.add("POST", "/subscriptions/{subscriptionId}/providers/Microsoft.Sql/checkNameAvailability",
                   lambda r: check_name(app, r), versions=VERSIONS, namespace=NAMESPACE, type_name="servers")


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
