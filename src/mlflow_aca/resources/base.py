"""What every managed resource has in common: a desired state built from the configuration
(pure, REST-shaped), a read, and the "ensure" that compares the two and writes only when
something differs. Plan, provision, deploy, status and teardown all go through it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mlflow_aca.azure import arm
from mlflow_aca.azure.arm import Kind
from mlflow_aca.azure.session import AzureSession
from mlflow_aca.cloud import Cloud
from mlflow_aca.config import Names, Settings
from mlflow_aca.errors import OperationError
from mlflow_aca.graph import Step, StepResult
from mlflow_aca.resources import ownership
from mlflow_aca.resources.ownership import ADOPTED, ADOPTING, DEPLOYMENT_TAG, FOREIGN, MANAGED_BY, OURS

__all__ = ["DEPLOYMENT_TAG", "MANAGED_BY"]


class Pending(str):
    """A value that only exists once a planned resource is created (shown in plans)."""


@dataclass
class Context:
    """What resource steps share during one command: configuration, the Azure session, and the
    outputs of steps that already finished (ids, keys, host names)."""

    settings: Settings
    cloud: Cloud
    session: AzureSession
    dry_run: bool = False
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Values handed from one step to another inside this process only (e.g. a generated
    # password between provision and deploy in `up`); never printed.
    private: dict[str, Any] = field(default_factory=dict)
    # Existing resources the operator adopts in this command (--adopt: names or step keys).
    adopt: frozenset[str] = frozenset()
    # States read by the ownership preflight just before the steps run, by step key: each step's
    # first read takes its resource's from here instead of asking Azure again (taken once; every
    # later read, e.g. while waiting on an operation, goes to Azure).
    prefetched: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def names(self) -> Names:
        return self.settings.names

    @property
    def subscription_id(self) -> str:
        return self.settings.require_subscription()

    @property
    def tags(self) -> dict[str, str]:
        return self.settings.tags_for_resources

    def publish(self, key: str, values: dict[str, Any]) -> None:
        with self._lock:
            self.outputs[key] = values

    def output(self, key: str, name: str) -> Any:
        """An output of a finished step; in a dry run, a placeholder for a planned resource."""
        with self._lock:
            values = self.outputs.get(key, {})
        value = values.get(name)
        if value is None:
            if self.dry_run:
                return Pending(f"<{key}.{name}>")
            raise OperationError(f"{key} has no {name} yet.", code="MissingDependency")
        return value

    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.names.resource_group}"


class Resource:
    """One Azure resource the tool owns. Subclasses describe it; this class converges it."""

    key: str = ""
    kind: Kind
    deps: tuple[str, ...] = ()
    # Carries tags itself, so its ownership is checked on its own (see ownership.py); the others
    # are owned through their parent.
    tagged: bool = False
    # REST paths whose values Azure does not return (write-only) or manages itself.
    ignored: tuple[str, ...] = ()

    # --- description (override) ------------------------------------------------------------
    def ids(self, ctx: Context) -> tuple[str, ...]:
        raise NotImplementedError

    def desired(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        """What dependents need from this resource once it exists."""
        return {"id": state.get("id")}

    def label(self, ctx: Context) -> str:
        return f"{self.kind.label} {self.ids(ctx)[-1]}"

    def name(self, ctx: Context) -> str:
        """The resource's own name (what --adopt accepts besides the step key)."""
        return self.ids(ctx)[-1]

    # --- behaviour (override where Azure needs it) ------------------------------------------
    def read(self, ctx: Context) -> dict[str, Any] | None:
        return arm.read(ctx.session, self.kind, *self.ids(ctx))

    def create(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        return arm.write(ctx.session, self.kind, *self.ids(ctx), body=body)

    def update(self, ctx: Context, body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        return arm.write(ctx.session, self.kind, *self.ids(ctx), body=body)

    def delete(self, ctx: Context) -> bool:
        return arm.remove(ctx.session, self.kind, *self.ids(ctx))

    def changes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any]) -> list[str]:
        return changed_paths(desired, current, ignored=self.ignored)

    def settled_read(self, ctx: Context) -> dict[str, Any] | None:
        """Read, waiting while Azure is still creating, updating or deleting the resource (an
        interrupted earlier run leaves such operations behind; writing now would be refused)."""
        deadline = time.monotonic() + ctx.settings.timeout_minutes * 60
        current = ctx.prefetched.pop(self.key) if self.key in ctx.prefetched else self.read(ctx)
        while current is not None and provisioning_state(current) in TRANSIENT_STATES:
            if ctx.dry_run:
                return current
            if time.monotonic() >= deadline:
                raise OperationError(
                    f"The {self.label(ctx)} is still {provisioning_state(current)} after "
                    f"{ctx.settings.timeout_minutes} minutes.",
                    code="ResourceBusy", hint="Wait for Azure to finish, then rerun.")
            time.sleep(ctx.settings.poll_interval)
            current = self.read(ctx)
        return current

    # --- ownership (ownership.py) --------------------------------------------------------------
    def claim(self, ctx: Context, current: dict[str, Any] | None) -> str:
        """ours, adopted or adopting (named in --adopt now) for an existing tagged resource;
        a foreign one the operator did not adopt stops the command (the preflight stopped it
        already before any write; this is the same rule where the write happens)."""
        if current is None or not self.tagged:
            return OURS
        status = ownership.owner(current.get("tags"), ctx.settings.name)
        if status != FOREIGN:
            return status
        if ownership.requested(ctx, self):
            return ADOPTING
        raise ownership.foreign_error(ctx, [(self, current)])

    def claimed(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None,
                status: str) -> dict[str, Any]:
        """The desired state as this resource's owner may write it: an adopted resource keeps its
        own tags and gains the adoption record instead of the tool's ownership tags."""
        if status == OURS or "tags" not in desired:
            return desired
        tags = ownership.adopted_tags(desired["tags"], (current or {}).get("tags"), ctx.settings.name)
        return {**desired, "tags": tags}

    # --- the verbs every command uses -------------------------------------------------------
    def ensure(self, ctx: Context) -> StepResult:
        current = self.settled_read(ctx)
        status = self.claim(ctx, current)
        desired = self.claimed(ctx, self.desired(ctx), current, status)
        if current is None:
            if ctx.dry_run:
                self._publish(ctx, _pending_state(desired))
                return StepResult("create", "", {"changes": ["(new)"]})
            state = self.create(ctx, desired)
            self._publish(ctx, state)
            return StepResult("created")
        fields = self.changes(ctx, desired, current)
        if provisioning_state(current) == "failed":
            fields.append("properties.provisioningState (Failed: reapplied)")
        if fields and not ctx.dry_run:
            current = self.update(ctx, desired, current)
        self._publish(ctx, current)
        note = adoption_note(status, ctx.dry_run)
        if not fields:
            return StepResult("ok", note)
        return StepResult("update" if ctx.dry_run else "updated", ", ".join([*fields, *([note] if note else [])]),
                          {"changes": fields})

    def lookup(self, ctx: Context) -> StepResult:
        """Read a resource another command provisioned; its absence is an error."""
        current = self.settled_read(ctx)
        if current is None:
            if ctx.dry_run:
                self._publish(ctx, _pending_state(self.desired(ctx)))
                return StepResult("create", "created by provision")
            raise OperationError(
                f"The {self.label(ctx)} does not exist.",
                code="NotProvisioned",
                hint="Run `mlflow-aca provision` first (or `mlflow-aca up`).",
            )
        if self.claim(ctx, current) == ADOPTING:
            # A lookup writes nothing, so it cannot record an adoption (the preflight says so first).
            raise ownership.foreign_error(ctx, [(self, current)], lookups=(self.key,))
        self._publish(ctx, current)
        return StepResult("ok")

    def step(self, ctx: Context, mode: str = "ensure", deps: tuple[str, ...] | None = None) -> Step:
        run = {"ensure": self.ensure, "lookup": self.lookup}[mode]
        return Step(self.key, self.label(ctx), lambda: run(ctx), self.deps if deps is None else deps)

    def _publish(self, ctx: Context, state: dict[str, Any]) -> None:
        ctx.publish(self.key, self.publish(ctx, state))


# Azure's provisioning states that mean "an operation is still running" (lowercased).
TRANSIENT_STATES = {"accepted", "inprogress", "creating", "updating", "provisioning", "waiting",
                    "deleting", "scheduledfordelete", "resolvingdns"}


def provisioning_state(state: dict[str, Any]) -> str:
    return str((state.get("properties") or {}).get("provisioningState") or "").lower()


def require_name_available(answer: tuple[bool, str], *, what: str, name: str, key: str, code: str) -> None:
    """Fail before creating when Azure says a globally unique name is taken."""
    available, reason = answer
    if not available:
        raise OperationError(
            f"The {what} name {name!r} is not available: {reason}",
            code=code,
            hint=f"{what[0].upper()}{what[1:]} names are global across Azure: set {key}.",
        )


def tagged_by_us(state: dict[str, Any] | None, deployment: str) -> bool:
    """Created by the tool for this deployment (not merely adopted)."""
    return ownership.owner((state or {}).get("tags"), deployment) == OURS


def adoption_note(status: str, dry_run: bool) -> str:
    """What a step's detail says about an existing resource the tool did not create."""
    if status == ADOPTING:
        return (f"adopt: will record {ownership.ADOPTED_TAG}" if dry_run
                else f"adopted: {ownership.ADOPTED_TAG} recorded")
    return "adopted: not created by mlflow-aca, teardown keeps it" if status == ADOPTED else ""


class Change(str):
    """One changed field: its dotted path (what `changes` lists, in StepResult details and the
    --json "changes") carrying the values a plan shows, Azure's current one and the one to be
    written. The values are display text made when the change is found (`shown`): secrets are
    masked there, so no secret value ever travels with a change, whole or in part."""

    old: str
    new: str

    def __new__(cls, path: str, *, old: Any, new: Any) -> Change:
        change = super().__new__(cls, path)
        change.old, change.new = shown(old, path), shown(new, path)
        return change


def value_changes(changes: list[str]) -> list[dict[str, str]]:
    """The changes that carry values, as plan rows: path, old, new (masked where secret)."""
    return [{"path": str(c), "old": c.old, "new": c.new} for c in changes if isinstance(c, Change)]


# Shown instead of a secret value, old or new (as terraform shows "(sensitive value)").
SECRET_SHOWN = "(secret)"
ABSENT_SHOWN = "(absent)"
SHOWN_LIMIT = 160
# Where the tool's desired states put secret values: Container Apps secrets (`secrets[i].value`,
# filled from listSecrets to compare), passwords and keys by name. Names of secrets
# (`secretRef`, `...SettingName`) are not secret.
_SECRET_LEAF = re.compile(r"(password|secret|sharedkey|primarykey|secondarykey|connectionstring|token)$",
                          re.IGNORECASE)
_SECRET_PATH = re.compile(r"(^|\.)secrets(\[\d+\])?\.value$")


def is_secret_path(path: str) -> bool:
    leaf = re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1])
    return bool(_SECRET_PATH.search(path) or _SECRET_LEAF.search(leaf))


def shown(value: Any, path: str) -> str:
    """A value as a plan shows it: JSON, secrets masked (by where they sit, then any value the
    redaction module knows), URL credentials masked, and shortened after all masking."""
    import json

    from mlflow_aca.redaction import redact, shorten

    if value is None:
        return ABSENT_SHOWN
    if isinstance(value, Pending):
        return "(known after apply)"
    masked = _mask_secrets(value, path)
    if masked == SECRET_SHOWN:
        return SECRET_SHOWN
    return shorten(redact(json.dumps(masked, default=str, ensure_ascii=False)), SHOWN_LIMIT)


def _mask_secrets(value: Any, path: str) -> Any:
    if is_secret_path(path):
        return SECRET_SHOWN
    if isinstance(value, dict):
        return {k: _mask_secrets(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def changed_paths(desired: Any, current: Any, *, ignored: tuple[str, ...] = (), path: str = "") -> list[str]:
    """Dotted paths where `desired` differs from `current`, each a `Change` with both values.

    Desired state is a subset: keys Azure adds (ids, provisioning state, defaults) are not
    differences. Resource ids and locations compare case-insensitively, as Azure treats them.
    """
    if path in ignored or _matches_ignored(path, ignored):
        return []
    if isinstance(desired, Pending):
        return []
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return [Change(path or "(root)", old=current, new=desired)]
        found: list[str] = []
        for key, value in desired.items():
            found += changed_paths(value, _get_key(current, key), ignored=ignored,
                                   path=f"{path}.{key}" if path else key)
        return found
    if isinstance(desired, list):
        if not desired and not current:
            return []  # Azure reports an empty list as absent
        if not isinstance(current, list) or len(desired) != len(current):
            return [Change(path, old=current, new=desired)]
        found = []
        for index, (want, have) in enumerate(zip(desired, current, strict=True)):
            found += changed_paths(want, have, ignored=ignored, path=f"{path}[{index}]")
        return found
    return [] if _same_scalar(path, desired, current) else [Change(path, old=current, new=desired)]


def _get_key(mapping: dict[str, Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    if key.startswith("/subscriptions/"):  # resource ids used as keys (identity maps)
        return next((v for k, v in mapping.items() if k.lower() == key.lower()), None)
    return None


# Enum-valued settings Azure accepts in any case and may answer in its own (ARM's enums are
# `modelAsString`, matched case-insensitively; e.g. a live app shows ingress transport "Auto"
# for "auto"). Compared without case so a rerun writes nothing.
CASE_INSENSITIVE_LEAVES = {"transport", "activeRevisionsMode", "scheme", "action", "unauthenticatedClientAction",
                           "redirectToProvider", "publicAccess", "principalType", "kind", "workloadProfileType"}


def _same_scalar(path: str, desired: Any, current: Any) -> bool:
    if isinstance(desired, str) and isinstance(current, str):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in CASE_INSENSITIVE_LEAVES:
            return desired.lower() == current.lower()
        if leaf == "location":
            return desired.replace(" ", "").lower() == current.replace(" ", "").lower()
        if desired.startswith("/subscriptions/") or leaf.endswith("Id") and "/" in desired:
            return desired.lower() == current.lower()
    if isinstance(desired, bool) or isinstance(current, bool):
        return desired is current
    return desired == current


def _matches_ignored(path: str, ignored: tuple[str, ...]) -> bool:
    import re

    normalised = re.sub(r"\[\d+\]", "[*]", path)
    return normalised in ignored


def _pending_state(desired: dict[str, Any]) -> dict[str, Any]:
    return {**desired, "id": Pending("<new id>")}
