"""One run at a time: a lease on the deployment, held while provision, deploy, up or teardown
writes (plan, status, env, logs and --dry-run only read and take none).

**Where it lives.** A tag (`mlflow-aca-lease`) on the deployment's user-assigned managed identity:
a resource the tool creates (so a tag on it is the tool's to write, resources/ownership.py),
free, created first by provision, needed by every later command, and deleted last by teardown.
Not the resource group: a pre-existing group is not ours to write. Not a management lock: it
blocks writes of everyone, the tool included, and records no holder or expiry. Not a blob lease
(atomic, but it needs a data-plane role the operator may lack, and the storage account exists
only after provision's first steps). The tag is merged and deleted through Microsoft.Resources/
tags (azure/tags.py), which leaves the identity's other tags alone; the identity's convergence
compares only the tags it wants (base.changed_paths: desired state is a subset), so the lease
is no drift. It is bookkeeping, not a change to the deployment: it is no step of the graph and
no write in a command's outcome.

**Racing runs.** Neither the tags API nor the identity's PUT takes If-Match (azure/tags.py), so
no write is conditional and the last writer wins. Acquisition is Fischer's timed mutual
exclusion (L. Lamport, "A Fast Mutual Exclusion Algorithm", ACM TOCS 5(1), 1987, §1): read the
tag; if free or expired, write our record; wait `lease_settle_seconds` (Δ); read again and go on
only if our record is still there. Of two runs that both saw it free, the later write wins and
the earlier writer sees it on its second read. The bound it needs: a run's write lands within Δ
of its read. Each run measures its own, from sending the read to the write's answer (an upper
bound on both moments), and when that took longer than Δ it waits twice as long as it took
instead (a moment slow for this run is taken to be as slow for a rival; a retry policy's pause
or a starved machine, not a rival, is the usual cause). Δ is not a documented ARM figure: it is
a setting.
What the bound cannot cover: a write delayed past Δ still lands and can replace a confirmed
holder's record; that holder writes it again at its next renewal.

**Cheap.** The acquisition runs in its own thread from the start of the command, beside the
ownership preflight and the graph's reads: only writes wait for it, held at the session
(AzureSession.write_gate, for every management write and Graph write). A run that never had to
write (a no-op rerun) does not wait for the confirmation at all: it withdraws its record at the
end. Its cost there is two tag writes (record, withdrawal) and no resource write.

**First provision.** With no identity yet there is nothing to hold a lease on. The group and the
identity are created first: the group step's writes are let through, and the identity is created
by the lease itself with our record already in its tags (its PUT is the lease's write, preceded
by a fresh read of the identity, so Fischer's rule covers it). Two first provisions at once both
PUT the group (the same body: idempotent), then race for the identity like any two runs: the
one whose record is not there after Δ stops before any other write. The graph's identity step
waits for the lease and reads the identity afresh (it then finds it converged). A run that does
not create the identity (deploy, teardown) and finds none has nothing to protect: it goes on
unleased (deploy then stops at its lookup; teardown finds nothing of the deployment's data).

**Expiry.** The record carries an expiry `lease_seconds` ahead, renewed every third of that by a
thread while the run goes on, so a killed run blocks others for at most `lease_seconds`. Held by
someone else and unexpired: refused (DeploymentBusy), naming the holder (user, host, pid,
command, start, expiry: nothing secret). No --break-lease: from here a live holder cannot be
told from a dead one, breaking a live one would put two writers on one deployment, and a dead
one's lease expires on its own. Refusing rather than waiting: the refused run has read a state
the other is changing, so the operator reruns it once the other is done.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlflow_aca.errors import MlflowAcaError, OperationError
from mlflow_aca.graph import GraphFailed, Step, StepResult

LEASE_TAG = "mlflow-aca-lease"
_TAG_VALUE_MAX = 256  # Azure's limit on a tag value
_JOIN_SECONDS = 10.0  # how long closing waits for a request of the lease's own thread


class DeploymentBusy(OperationError):
    """Another run holds the deployment's lease (exit code 3, an operation that cannot go on)."""

    default_code = "DeploymentBusy"


@dataclass(frozen=True)
class Holder:
    token: str
    user: str
    host: str
    pid: str
    command: str
    since: str
    until: str

    def encode(self) -> str:
        value = (f"token={self.token} until={self.until} since={self.since} cmd={self.command} "
                 f"pid={self.pid} user={_word(self.user)[:40]} host={_word(self.host)[:60]}")
        return value[:_TAG_VALUE_MAX]

    @classmethod
    def decode(cls, value: str | None) -> Holder | None:
        if not value:
            return None
        fields = dict(part.split("=", 1) for part in value.split() if "=" in part)
        if "token" not in fields or "until" not in fields:
            return None
        return cls(fields["token"], fields.get("user", "?"), fields.get("host", "?"), fields.get("pid", "?"),
                   fields.get("cmd", "?"), fields.get("since", "?"), fields["until"])

    def expired(self, now: datetime) -> bool:
        try:
            return datetime.fromisoformat(self.until.replace("Z", "+00:00")) <= now
        except ValueError:
            return True  # an unreadable record holds nothing

    def as_data(self) -> dict[str, str]:
        return {"user": self.user, "host": self.host, "pid": self.pid, "command": self.command,
                "since": self.since, "expires": self.until}


def _word(text: str) -> str:
    return re.sub(r"\s+", "_", text) or "?"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def busy(ctx: Any, holder: Holder | None) -> DeploymentBusy:
    name = ctx.settings.name
    if holder is not None:
        who = (f"`mlflow-aca {holder.command}` run by {holder.user}@{holder.host} (pid {holder.pid}) "
               f"since {holder.since} holds its lease, valid until {holder.until} unless renewed")
        until = f"at {holder.until}"
    else:
        who = "another run took its lease at the same moment"
        until = f"within lease_seconds = {ctx.settings.lease_seconds}"
    hint = ("Wait for that run to finish, then rerun. If it was stopped or killed, its lease expires "
            f"{until} (lease_seconds = {ctx.settings.lease_seconds} after its last renewal); rerun then.")
    return DeploymentBusy(f"Deployment {name!r} is busy: {who}. Nothing was changed by this run.",
                          hint=hint, data={"lease": holder.as_data()} if holder else None)


class Lease:
    """The lease of one command. `start` begins taking it in a thread; writes wait in `gate`."""

    def __init__(self, ctx: Any, command: str, *, creates_identity: bool) -> None:
        from mlflow_aca.resources.identity import Identity

        self.ctx = ctx
        self.command = command
        self.creates_identity = creates_identity
        self.identity = Identity()
        self.scope = (f"{ctx.resource_group_id()}/providers/Microsoft.ManagedIdentity/"
                      f"userAssignedIdentities/{ctx.names.identity}")
        self.seconds = ctx.settings.lease_seconds
        self.settle = ctx.settings.lease_settle_seconds
        self.token = secrets.token_hex(6)
        self.since = _iso(datetime.now(UTC))
        self.first_provision = False  # the identity did not exist: see the module's docstring
        self.created_identity = False
        self.held = False
        self.identity_deleted = False  # by this run (teardown --delete-data): nothing to give back
        self.error: MlflowAcaError | None = None
        self._written: str | None = None  # our record as last written (None: never written)
        self._decided = threading.Event()
        self._known = threading.Event()  # the first read answered: whether this is a first provision
        self._group_done = threading.Event()
        self._stop = threading.Event()
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self._renewer: threading.Thread | None = None

    # --- the gate writes pass --------------------------------------------------------------------
    def gate(self) -> None:
        """Before a write: wait until the lease is held (or known not to be needed); raise if the
        deployment is busy. The lease's own requests, and a first provision's group, pass."""
        if getattr(self._local, "ungated", False):
            return
        self._decided.wait()
        if self.error is not None:
            error = self.error
            raise type(error)(error.message, code=error.code, hint=error.hint, data=error.data)

    @contextmanager
    def ungated(self) -> Iterator[None]:
        self._local.ungated = True
        try:
            yield
        finally:
            self._local.ungated = False

    @property
    def decided(self) -> bool:
        return self._decided.is_set()

    def confirmed(self) -> None:
        """Wait for the lease in this thread (e.g. before asking the operator to confirm)."""
        self.gate()

    # --- taking it ----------------------------------------------------------------------------
    def start(self) -> None:
        self.ctx.session.write_gate = self.gate
        self._thread = threading.Thread(target=self._acquire, name="mlflow-aca-lease", daemon=True)
        self._thread.start()

    def _acquire(self) -> None:
        self._local.ungated = True
        try:
            # The clients first: building one imports its SDK, which is no part of the timed
            # read-to-write window.
            self.ctx.session.client(self.identity.kind.client)
            self.ctx.session.client("resources")
            self._attempt()
        except MlflowAcaError as error:
            self.error = error
        except BaseException as error:  # noqa: BLE001 - a bug: the writes must not wait forever
            self.error = OperationError(f"Could not take the deployment's lease: {error}", code="LeaseFailed")
        finally:
            if self._stop.is_set() and not self.held and self.error is None:
                self.error = _closed()
            self._known.set()
            self._decided.set()

    def _attempt(self) -> None:
        """Fischer's protocol, once: held, not needed, or refused (DeploymentBusy)."""
        started = time.monotonic()
        state = self.identity.read(self.ctx)
        if state is None and self.creates_identity:
            self.first_provision = True
        self._known.set()
        if state is None and self.creates_identity:
            self._group_done.wait()  # the group step (let through the gate) ends first
            if self._stop.is_set():
                return
            started = time.monotonic()
            state = self.identity.read(self.ctx)
        if state is None:
            if not self.creates_identity:
                return  # nothing to lease, nothing of the deployment to protect (docstring)
            body = self.identity.desired(self.ctx)
            record = self._record()
            self._written = record
            self.identity.create(self.ctx, {**body, "tags": {**body.get("tags", {}), LEASE_TAG: record}})
            self.created_identity = True
        else:
            from mlflow_aca.resources.ownership import FOREIGN, owner

            tags = state.get("tags") or {}
            if owner(tags, self.ctx.settings.name) == FOREIGN:
                return  # not ours to tag: the preflight refuses it, or --adopt takes it now
            holder = Holder.decode(tags.get(LEASE_TAG))
            if holder is not None and holder.token != self.token and not holder.expired(datetime.now(UTC)):
                raise busy(self.ctx, holder)
            self._write()
        # Δ, or twice this run's own read-to-write when Azure (or this machine) was slower than Δ:
        # a rival's write is assumed no slower than ours was. Retracting a slow write instead
        # protects nobody: by then it may have replaced a rival's record, and the retraction would
        # delete that record too.
        if self._stop.wait(max(self.settle, 2 * (time.monotonic() - started))):
            return  # closed meanwhile
        state = self.identity.read(self.ctx)
        holder = Holder.decode(((state or {}).get("tags") or {}).get(LEASE_TAG))
        if holder is None or holder.token != self.token:
            raise busy(self.ctx, holder)
        self.held = True
        self._renewer = threading.Thread(target=self._renew, name="mlflow-aca-lease-renewal", daemon=True)
        self._renewer.start()

    def _record(self) -> str:
        until = _iso(datetime.now(UTC) + timedelta(seconds=self.seconds))
        return Holder(self.token, _user(), socket.gethostname(), str(os.getpid()), self.command,
                      self.since, until).encode()

    def _write(self) -> None:
        from mlflow_aca.azure import tags

        record = self._record()
        self._written = record
        tags.patch(self.ctx.session, self.scope, "Merge", {LEASE_TAG: record})

    def _renew(self) -> None:
        self._local.ungated = True
        while not self._stop.wait(self.seconds / 3):
            try:
                self._write()
            except Exception:  # noqa: BLE001 - a missed renewal is retried at the next tick
                continue

    def rewrite(self) -> None:
        """After a PUT of the identity (which replaces all of its tags): our record back at once."""
        if self.held and not self._stop.is_set():
            with self.ungated():
                self._write()

    def _withdraw(self) -> None:
        """Delete the lease tag if the record in it is ours (never another run's)."""
        from mlflow_aca.azure import tags

        if self._written is None:
            return
        state = self.identity.read(self.ctx)
        raw = ((state or {}).get("tags") or {}).get(LEASE_TAG)
        holder = Holder.decode(raw)
        if raw and holder is not None and holder.token == self.token:
            tags.patch(self.ctx.session, self.scope, "Delete", {LEASE_TAG: raw})
        self._written = None

    # --- hooks into a first provision's graph -------------------------------------------------
    def wrap(self, steps: list[Step]) -> list[Step]:
        """The group step passes the gate and tells the lease when it ends (first provision); the
        identity step waits for the lease (first provision), and a PUT of the identity is followed
        by our record written back (it replaced every tag)."""
        return [self._group_step(s) if s.key == "resource_group" else
                self._identity_step(s) if s.key == "identity" else s for s in steps]

    def _group_step(self, step: Step) -> Step:
        def run() -> StepResult:
            try:
                self._known.wait()
                if not self.first_provision:
                    return step.run()
                with self.ungated():
                    return step.run()
            finally:
                self._group_done.set()

        return Step(step.key, step.label, run, step.deps)

    def _identity_step(self, step: Step) -> Step:
        def run() -> StepResult:
            if self.first_provision:
                self.gate()
                self.ctx.prefetched.pop(step.key, None)  # the lease created it since the preflight
            result = step.run()
            if result.outcome in ("created", "updated"):
                self.rewrite()
            elif result.outcome == "ok" and self.created_identity:
                result = StepResult("created", result.detail, result.data)
            return result

        return Step(step.key, step.label, run, step.deps)

    # --- giving it back -----------------------------------------------------------------------
    def close(self, *, identity_deleted: bool = False) -> None:
        """Stop renewing and give the lease back (Ctrl-C and failures included). Not when the
        identity was deleted by this run: the lease went with it."""
        self._stop.set()
        self._group_done.set()
        if not self._decided.is_set() and self._thread is None:
            self.error = _closed()
            self._decided.set()
        for thread in (self._thread, self._renewer):
            if thread is not None:
                thread.join(_JOIN_SECONDS)
        self.ctx.session.write_gate = None
        if identity_deleted:
            return
        try:
            with self.ungated():
                self._withdraw()
        except Exception:  # noqa: BLE001 - the record then expires on its own (lease_seconds)
            pass

    def finish(self, execute: Any) -> Any:
        """Run the command's graph (`execute()`, an Outcome) under the lease. Refused: the
        refusal is the command's error, also when no step had to write (it read a state another
        run is changing). Still undecided at the end: no write was needed, so the run does not
        wait for the confirmation (close withdraws the record)."""
        try:
            outcome = execute()
        except GraphFailed as failed:
            self._note(failed.results)
            if self.decided and isinstance(self.error, DeploymentBusy):
                raise self.error from None
            raise
        self._note(outcome.results)
        if self.decided and self.error is not None:
            raise self.error
        return outcome

    def _note(self, results: dict[str, StepResult]) -> None:
        identity = results.get("identity")
        if identity is not None and identity.outcome == "deleted":
            self.identity_deleted = True


def _closed() -> OperationError:
    return OperationError("The run stopped before it held the deployment's lease.", code="LeaseClosed")


@contextmanager
def held(ctx: Any, command: str, *, creates_identity: bool) -> Iterator[Lease | None]:
    """The lease around a writing command (None in a dry run, which writes nothing)."""
    if ctx.dry_run:
        yield None
        return
    lease = Lease(ctx, command, creates_identity=creates_identity)
    lease.start()
    try:
        yield lease
    finally:
        lease.close(identity_deleted=lease.identity_deleted)
