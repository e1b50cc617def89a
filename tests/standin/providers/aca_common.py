"""Validation shared by container apps and jobs (Microsoft.App): names, secrets and their
references, registries, containers, probes, resource totals, scale and the environment link."""

from __future__ import annotations

import re
from typing import Any

from ..arm import bad_request, conflict, not_found
from ..resources import PutContext, check_enum
from ..store import Resource

NAMESPACE = "Microsoft.App"
ENVIRONMENT_TYPE = "Microsoft.App/managedEnvironments"
VERSIONS = frozenset({"2022-03-01", "2022-10-01", "2023-05-01", "2023-08-01-preview", "2024-03-01",
                      "2024-08-02-preview", "2024-10-02-preview", "2025-01-01", "2025-02-02-preview",
                      "2025-07-01", "2026-07-01"})
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_CONTAINER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Consumption plan: total CPU (cores) -> total memory (GiB) of all containers of a replica.
CONSUMPTION_SIZES = {c / 4: c / 2 for c in range(1, 17)}


def check_app_name(name: str, what: str = "ContainerApp") -> None:
    if not _APP_NAME.match(name) or "--" in name:
        raise bad_request(f"{what}InvalidName",
                          f"Invalid {what} name '{name}'. A name must consist of lower case alphanumeric characters "
                          "or '-', start with an alphabetic character, and end with an alphanumeric character and "
                          "cannot have '--'. The length must not be more than 32 characters.")


def environment(ctx: PutContext, env_id: Any, existing_id: str | None) -> Resource:
    """The environment an app or job runs in: it must exist, be ready and stay the same."""
    if not env_id:
        raise bad_request("ManagedEnvironmentRequired",
                          "The property 'properties.managedEnvironmentId' (or 'environmentId') is required.")
    if existing_id and str(env_id).lower() != existing_id.lower():
        raise bad_request("ManagedEnvironmentCannotBeChanged",
                          f"The environment of '{ctx.name}' cannot be changed from '{existing_id}' to '{env_id}'.")
    env = ctx.app.store.get(str(env_id))
    if env is None or env.type != ENVIRONMENT_TYPE:
        raise not_found("ManagedEnvironmentNotFound", f"The managed environment '{env_id}' was not found.")
    if env.properties.get("provisioningState") != "Succeeded":
        raise conflict("ManagedEnvironmentNotReadyForAppCreation",
                       f"The managed environment '{env.doc['name']}' is in provisioning state "
                       f"'{env.properties.get('provisioningState')}'; wait until it has succeeded.")
    if ctx.location.replace(" ", "").lower() != env.doc["location"]:
        raise bad_request("LocationMismatch",
                          f"The location '{ctx.location}' must be the managed environment's location "
                          f"'{env.doc['location']}'.")
    return env


def secrets(ctx: PutContext, config: dict, identity: dict | None) -> list[dict]:
    """Validate `configuration.secrets`; keep values aside in ctx.secrets; return what GET shows."""
    items = config.get("secrets") or []
    previous = ctx.existing.secrets if ctx.existing is not None else {}
    values: dict[str, str] = {}
    shown: list[dict] = []
    invalid = []
    for item in items:
        name = str(item.get("name") or "")
        if not _SECRET_NAME.match(name):
            raise bad_request("ContainerAppSecretInvalidName",
                              f"Invalid secret name '{name}': use lower case letters, digits, '-' and '.', starting "
                              "and ending with a letter or digit, at most 253 characters.")
        if name in values or any(s["name"] == name for s in shown):
            raise bad_request("ContainerAppDuplicateSecretName", f"The secret name '{name}' is used more than once.")
        entry = {"name": name}
        if item.get("keyVaultUrl"):
            if not item.get("identity"):
                invalid.append(name)
                continue
            _assigned_identity(item["identity"], identity, f"secret '{name}'")
            entry.update(keyVaultUrl=item["keyVaultUrl"], identity=item["identity"])
        elif item.get("value") not in (None, ""):
            values[name] = item["value"]
        elif ctx.patch and name in previous:
            values[name] = previous[name]      # a PATCH that only lists names keeps the values
        else:
            invalid.append(name)
            continue
        shown.append(entry)
    if invalid:
        raise bad_request("ContainerAppSecretInvalid",
                          f"Invalid Request: Container app secret(s) with name(s) "
                          f"'{', '.join(invalid)}' are invalid: value or keyVaultUrl and identity should be provided.")
    ctx.secrets = values
    return shown


def registries(config: dict, secret_names: set[str], identity: dict | None) -> list[dict]:
    out = []
    for item in config.get("registries") or []:
        server = item.get("server")
        if not server:
            raise bad_request("InvalidParameterValue",
                              "Each registry needs a 'server'.")
        if item.get("identity"):
            _assigned_identity(item["identity"], identity, f"registry '{server}'")
        elif item.get("username"):
            ref = item.get("passwordSecretRef")
            if ref not in secret_names:
                raise bad_request("ContainerAppSecretRefNotFound",
                                  f"PasswordSecretRef '{ref}' defined for registry server '{server}' not found.")
        else:
            raise bad_request("InvalidParameterValue",
                              f"The registry '{server}' needs either an identity or a username and passwordSecretRef.")
        out.append({k: v for k, v in item.items() if v is not None})
    return out


def _assigned_identity(value: str, identity: dict | None, where: str) -> None:
    if str(value).lower() == "system":
        if identity and "SystemAssigned" in identity["type"]:
            return
        raise bad_request("InvalidParameterValue",
                          f"The {where} uses the system-assigned identity, which is not enabled on this resource.")
    assigned = {k.lower() for k in ((identity or {}).get("userAssignedIdentities") or {})}
    if str(value).lower() not in assigned:
        raise bad_request("ContainerAppUserAssignedIdentityNotFound",
                          f"The identity '{value}' used by {where} is not assigned to this resource: add it to "
                          "identity.userAssignedIdentities.")


def containers(template: dict, secret_names: set[str], *, workload_profiles: bool, what: str) -> None:
    items = template.get("containers") or []
    if not items:
        raise bad_request("InvalidParameterValue",
                          f"The {what} template must have at least one container.")
    total_cpu, total_memory = 0.0, 0.0
    for container in items + (template.get("initContainers") or []):
        name = str(container.get("name") or "")
        if not _CONTAINER_NAME.match(name):
            raise bad_request("InvalidParameterValue",
                              f"Invalid container name '{name}': use lower case letters, digits and '-'.")
        if not container.get("image"):
            raise bad_request("ContainerAppImageRequired",
                              f"The container '{name}' needs an image.")
        for var in container.get("env") or []:
            if not var.get("name"):
                raise bad_request("InvalidParameterValue", f"An environment variable of container '{name}' has no name.")
            ref = var.get("secretRef")
            if ref is not None and ref not in secret_names:
                raise bad_request("ContainerAppSecretRefNotFound",
                                  f"SecretRef '{ref}' defined for container '{name}' not found.")
            if ref is not None and var.get("value") is not None:
                raise bad_request("InvalidParameterValue",
                                  f"Environment variable '{var['name']}' of container '{name}' sets both value and "
                                  "secretRef.")
        _probes(container)
        resources = container.get("resources") or {}
        total_cpu += float(resources.get("cpu", 0.5))
        total_memory += _gibibytes(resources.get("memory", "1Gi"))
    if not workload_profiles and CONSUMPTION_SIZES.get(round(total_cpu, 2)) != round(total_memory, 2):
        combos = "; ".join(f"[cpu: {c}, memory: {m}Gi]" for c, m in CONSUMPTION_SIZES.items())
        raise bad_request("ContainerAppInvalidResourceTotal",
                          f"The total requested CPU and memory resources for this application (CPU: {total_cpu:g}, "
                          f"memory: {total_memory:g}Gi) is invalid. Total CPU and memory for all containers defined "
                          f"in a Container App must add up to one of the following CPU - Memory combinations: {combos}")


def _gibibytes(value: Any) -> float:
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(Gi|Mi)?", text)
    if not match:
        raise bad_request("InvalidParameterValue", f"Invalid memory value '{value}': use e.g. '2Gi' or '512Mi'.")
    number = float(match.group(1))
    return number / 1024 if match.group(2) == "Mi" else number


def _probes(container: dict) -> None:
    seen = set()
    for probe in container.get("probes") or []:
        kind = check_enum(probe.get("type"), ["Liveness", "Readiness", "Startup"], "probes.type",
                          code="ContainerAppInvalidProbe")
        if kind in seen:
            raise bad_request("ContainerAppInvalidProbe",
                              f"Container '{container.get('name')}' has more than one {kind} probe.")
        seen.add(kind)
        target = probe.get("httpGet") or probe.get("tcpSocket")
        if not target or not isinstance(target.get("port"), int) or not 1 <= target["port"] <= 65535:
            raise bad_request("ContainerAppInvalidProbe",
                              f"The {kind} probe of container '{container.get('name')}' needs httpGet or tcpSocket "
                              "with a port between 1 and 65535.")
        for key, low, high in (("periodSeconds", 1, 240), ("timeoutSeconds", 1, 240), ("failureThreshold", 1, 10),
                               ("initialDelaySeconds", 0, 60)):
            value = probe.get(key)
            if value is not None and not low <= value <= high:
                raise bad_request("ContainerAppInvalidProbe",
                                  f"The {kind} probe's {key} must be between {low} and {high}.")


def scale(template: dict) -> dict:
    settings = dict(template.get("scale") or {})
    low = settings.setdefault("minReplicas", 0)
    high = settings.setdefault("maxReplicas", 10)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= 1000 and 1 <= high <= 1000 and low <= high):
        raise bad_request("InvalidParameterValue",
                          f"Invalid scale settings: minReplicas ({low}) must be 0 to 1000, maxReplicas ({high}) 1 to "
                          "1000, and minReplicas <= maxReplicas.")
    return settings


def uses_workload_profiles(env: Resource) -> bool:
    return bool(env.properties.get("workloadProfiles"))
