"""Which existing resources the tool may change: ownership by tags, adoption by the operator.

**Tagged resources** carry tags themselves: the identity, workspace, storage account, registry,
SQL server, SQL database, Container Apps environment, container app and migration job
(`Resource.tagged`). The tool writes its ownership tags (managed-by=mlflow-aca,
mlflow-aca-deployment=<name>) only on one it creates. An existing one without them is
*foreign*: no command writes to it, retags it or deletes it, and a converging command stops
before its first write, naming it (`preflight`), unless the operator adopts it (`--adopt NAME`,
NAME its name or the step key). Adopting records `mlflow-aca-adopted=<name>` on it, keeps its
other tags (no ownership tags are added), and converges it to this deployment's settings like the
tool's own; `plan` shows it. Teardown never deletes an adopted resource: the tool cannot know what
else depends on something it did not create.

**Owned through their parent** (Azure keeps no tags on them, or none anyone reads): blob
soft-delete settings and the artifact container (storage account); the Entra administrator,
Entra-only switch, firewall rules (SQL server); the app's auth config (container app). They are
written only after their parent was found ours or adopted (they depend on it in the graph, and
the preflight checks the parent first). Role assignments are owned through their principal, the
tool's identity, on a scope the tool owns or adopted. The sign-in registration (Graph) carries its
own list of tags (`signin.registered_by_us`).

**The resource group** is neither: an existing group is used as it is (never written, retagged or
deleted, and not adoptable); one the tool created carries its tags and is deleted by
`teardown --delete-data` only when nothing else is left in it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlflow_aca.errors import OperationError, UsageError

MANAGED_BY = ("managed-by", "mlflow-aca")
DEPLOYMENT_TAG = "mlflow-aca-deployment"
ADOPTED_TAG = "mlflow-aca-adopted"
OWNERSHIP_TAGS = (MANAGED_BY[0], DEPLOYMENT_TAG)

OURS, ADOPTED, ADOPTING, FOREIGN = "ours", "adopted", "adopting", "foreign"
GROUP_KEY = "resource_group"


def owner(tags: dict[str, Any] | None, deployment: str) -> str:
    """ours (created by the tool for this deployment), adopted, or foreign. A resource another
    deployment of the tool created is foreign to this one."""
    tags = tags or {}
    if tags.get(MANAGED_BY[0]) == MANAGED_BY[1] and tags.get(DEPLOYMENT_TAG) == deployment:
        return OURS
    if tags.get(ADOPTED_TAG) == deployment:
        return ADOPTED
    return FOREIGN


def adopted_tags(desired: dict[str, str], current: dict[str, str] | None, deployment: str) -> dict[str, str]:
    """Tags for an adopted resource: its own kept (a PUT replaces all tags), the desired ones
    except the ownership tags, and the adoption record."""
    extra = {k: v for k, v in desired.items() if k not in OWNERSHIP_TAGS}
    return {**(current or {}), **extra, ADOPTED_TAG: deployment}


def requested(ctx: Any, resource: Any) -> bool:
    """Did the operator name this resource in --adopt (by step key or by name)?"""
    adopt = getattr(ctx, "adopt", frozenset())
    return bool(adopt) and (resource.key in adopt or resource.name(ctx) in adopt)


def check_adopt_names(ctx: Any, resources: list[Any]) -> None:
    """Every --adopt NAME must name exactly one resource this command converges."""
    adopt = getattr(ctx, "adopt", frozenset())
    for name in sorted(adopt):
        if name in (GROUP_KEY, ctx.names.resource_group):
            raise UsageError(
                f"--adopt {name}: the resource group is never adopted. An existing group is used as it "
                "is (nothing written to it) and never deleted.", code="adopt_invalid",
                hint="Drop this --adopt.")
        matches = [r for r in resources if r.tagged and (r.key == name or r.name(ctx) == name)]
        if not matches:
            known = ", ".join(f"{r.key} ({r.name(ctx)})" for r in resources if r.tagged)
            raise UsageError(f"--adopt {name}: no resource of this command has that name or key.",
                             code="adopt_invalid", hint=f"Adoptable here: {known}.")
        if len({r.key for r in matches}) > 1:
            keys = " or ".join(f"--adopt {r.key}" for r in matches)
            raise UsageError(f"--adopt {name}: several resources have that name.", code="adopt_invalid",
                             hint=f"Name the step instead: {keys}.")


def preflight(ctx: Any, resources: list[Any], *, lookups: tuple[str, ...] = ()) -> None:
    """Before any write: read every tagged resource the command touches, and stop (naming all of
    them at once) if one exists that is neither the tool's nor adopted nor being adopted.
    Resources in `lookups` are only read by this command: they can be adopted only by a command
    that converges them."""
    check_adopt_names(ctx, resources)
    tagged = [r for r in resources if r.tagged]
    with ThreadPoolExecutor(max_workers=max(1, ctx.settings.concurrency)) as pool:
        states = list(pool.map(lambda r: r.read(ctx), tagged))
    # The steps start right after this: their first read is this one (no second GET per resource).
    ctx.prefetched.update({r.key: state for r, state in zip(tagged, states, strict=True)})
    foreign = []
    for resource, state in zip(tagged, states, strict=True):
        if state is None:
            continue
        status = owner(state.get("tags"), ctx.settings.name)
        if status == FOREIGN and (resource.key in lookups or not requested(ctx, resource)):
            foreign.append((resource, state))
    if foreign:
        raise foreign_error(ctx, foreign, lookups=lookups)


def foreign_error(ctx: Any, found: list[tuple[Any, dict[str, Any]]], *,
                  lookups: tuple[str, ...] = ()) -> OperationError:
    parts = []
    for resource, state in found:
        tags = state.get("tags") or {}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(tags.items())[:4]) or "no tags"
        parts.append(f"the {resource.label(ctx)} ({shown})")
    listed = "; ".join(parts)
    names = " ".join(f"--adopt {resource.key}" for resource, _ in found)
    read_only = [resource.key for resource, _ in found if resource.key in lookups]
    how = (f"`mlflow-aca provision {names}`" if read_only else f"rerun with {names}")
    one = len(found) == 1
    return OperationError(
        f"{listed[:1].upper()}{listed[1:]} {'exists' if one else 'exist'} but {'was' if one else 'were'} not "
        f"created by mlflow-aca for deployment {ctx.settings.name!r} (no "
        f"{DEPLOYMENT_TAG}={ctx.settings.name} tag). Nothing was changed: the tool never modifies, "
        "retags or deletes what it did not create.",
        code="ForeignResource",
        hint=f"Choose another name in the configuration, or, if this deployment should manage it, {how}: "
        f"it is then converged to this deployment's settings, tagged {ADOPTED_TAG}={ctx.settings.name}, "
        "and never deleted by teardown.",
    )
