"""Why an image pull failed, said plainly, and whether waiting can fix it.

Container Apps reports a failed pull inside a generic `ContainerAppOperationError` ("Failed to
provision revision ... Field 'template.containers.<c>.image' is invalid with details: ...") with
the registry's own error in it: `MANIFEST_UNKNOWN` for a tag the registry does not hold,
`UNAUTHORIZED: authentication required` when the identity may not pull (observed outputs in
Azure-Samples/call-center-voice-agent-accelerator#3 and app-templates-microservices-integration#13;
Docker registry HTTP API v2 error codes). A pull that keeps failing while the revision starts
ends in "Operation expired" with the same text (microsoft/azure-container-apps#646).

A new AcrPull role assignment is not in force at once: "When you assign roles or remove role
assignments, it can take up to 10 minutes for changes to take effect"
(learn.microsoft.com/azure/role-based-access-control/troubleshooting, "Role assignment changes
are not being detected"). A pull refused while the app's AcrPull assignment is younger than
that is still propagating: worth waiting for, not an error to fix.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from mlflow_aca import distribution
from mlflow_aca.errors import OperationError
from mlflow_aca.resources.base import Context, Pending

PROPAGATION_SECONDS = 600

_MISSING = re.compile(r"MANIFEST_UNKNOWN|manifest unknown|NAME_UNKNOWN|repository name not known", re.I)
_DENIED = re.compile(r"UNAUTHORIZED|authentication required|DENIED|insufficient_scope|requested access "
                     r"to the resource is denied", re.I)


def pull_failure(text: str) -> str | None:
    """"missing" or "denied" when `text` (an operation's error, a revision's provisioning error
    or a replica's state details) is a refused image pull; None otherwise."""
    if not text:
        return None
    if _MISSING.search(text):
        return "missing"
    if _DENIED.search(text):
        return "denied"
    return None


def acr_pull_age(ctx: Context) -> float | None:
    """Seconds since the app identity's AcrPull assignment on the deployment's registry was
    created (its `createdOn`), or None when it cannot be read (not created by us, a plan)."""
    from mlflow_aca.azure.roles import ACR_PULL
    from mlflow_aca.resources.roles import RoleAssignment

    role = RoleAssignment("role_acr_pull", ACR_PULL, "AcrPull", "registry")
    try:
        if isinstance(role.scope(ctx), Pending) or isinstance(role.principal(ctx), Pending):
            return None
        state = role.read(ctx)
    except OperationError:
        return None
    created = parse_time(str(((state or {}).get("properties") or {}).get("createdOn") or ""))
    if created is None:
        return None
    # Local clock against Azure's: a skew of a few seconds only shifts the estimate.
    return max(0.0, time.time() - created.timestamp())


def parse_time(text: str) -> datetime | None:
    """An ARM timestamp ("2024-05-01T10:00:00.1234567Z", 7 fractional digits allowed)."""
    if not text:
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text.strip())
    if not match:
        return None
    seconds, fraction, zone = match.groups()
    stamp = seconds + (fraction or ".0")[:7]   # Python takes at most 6 fractional digits
    if zone and zone != "Z":
        return datetime.fromisoformat(stamp + zone)
    return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)


def still_propagating(age: float | None) -> bool:
    return age is not None and age < PROPAGATION_SECONDS


def describe_age(age: float) -> str:
    if age < 120:
        return f"{int(age)} s ago"
    return f"{int(age // 60)} min ago"


def pull_error(ctx: Context, image: str, text: str, *, what: str, age: float | None = None,
               waited: float | None = None) -> OperationError | None:
    """The error to raise for a refused pull of `image` (None when `text` is no pull failure).
    `what` names the workload ("the app", "the migration job"); `age` is the AcrPull
    assignment's age when already known."""
    kind = pull_failure(text)
    if kind is None:
        return None
    host = distribution.locate(image).host
    detail = _azure_detail(text)
    if kind == "missing":
        return OperationError(
            f"{what.capitalize()} cannot start: the image {image} is not in the registry {host} "
            f"({detail}).",
            code="ImageNotFound",
            hint="Push the image first (`mlflow-aca push`, or `mlflow-aca up` to build, push and deploy), "
            "or deploy an image that exists with --image.")
    client_id = str(ctx.outputs.get("identity", {}).get("client_id") or "<unknown>")
    ours = host.lower() == str(ctx.outputs.get("registry", {}).get("login_server") or "").lower()
    if not ours:
        return OperationError(
            f"{what.capitalize()} cannot pull {image}: the registry {host} refused it ({detail}).",
            code="ImagePullDenied",
            hint=f"The app pulls only from {ctx.outputs.get('registry', {}).get('login_server') or 'its registry'} "
            "with its identity; push the image there (`mlflow-aca push`) or use a public image.")
    if age is None:
        age = acr_pull_age(ctx)
    if still_propagating(age):
        assert age is not None
        waited_text = f" after waiting {int(waited)} s" if waited else ""
        return OperationError(
            f"{what.capitalize()} could not pull {image}{waited_text}: the identity {client_id} was granted "
            f"AcrPull on {host} {describe_age(age)}, and Azure role assignments take up to 10 minutes "
            f"to take effect ({detail}).",
            code="ImagePullPending",
            hint="The grant is still propagating: rerun `mlflow-aca deploy` in a few minutes "
            "(or raise timeout_minutes so deploy waits longer).")
    granted = f" (granted {describe_age(age)})" if age is not None else " (no AcrPull assignment found)"
    return OperationError(
        f"{what.capitalize()} may not pull {image}: the registry {host} refused the identity {client_id}, "
        f"which needs AcrPull on it{granted} ({detail}).",
        code="ImagePullDenied",
        hint="Rerun `mlflow-aca provision` to restore the AcrPull role assignment on the registry, and "
        "check that the app's registries entry names that identity.")


def _azure_detail(text: str) -> str:
    """The part of Azure's message that names the registry's answer, shortened."""
    match = re.search(r"(GET https?:[^']*|MANIFEST_UNKNOWN[^;']*|UNAUTHORIZED[^;']*)", text)
    found = (match.group(1) if match else text).strip().rstrip(".;")
    while found.endswith(")") and found.count(")") > found.count("("):
        found = found[:-1].rstrip(".;")   # the close of an enclosing "(...)" in a replica's details
    return found if len(found) <= 300 else found[:297] + "..."
