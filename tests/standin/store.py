"""In-memory state of the stand-in: resources, long-running operations, principals.

Resources are keyed by their lower-cased id, so `resourcegroups` and `resourceGroups` paths
reach the same entry, and deleting an id removes every id below it (ARM's cascade).
Long-running operations complete lazily: `settle()` runs at the start of every request and
finishes each operation whose time has come, so nothing depends on background threads.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Operation:
    id: str
    resource_id: str
    kind: str                         # "put", "delete" or "action"
    done_at: float
    started: float
    failure: tuple[str, str] | None = None    # (code, message) to end with
    on_success: list[Callable[[], None]] = field(default_factory=list)
    on_failure: list[Callable[[], None]] = field(default_factory=list)
    status: str = "InProgress"
    result: Callable[[], Any] | None = None   # body of the final Location poll
    path: str = ""                            # the status document's own path
    # Called when done_at has come (and no failure is set yet): returns True to stay InProgress
    # (having moved done_at later), or False to finish now (possibly having set `failure`).
    # Container apps hold a revision's operation while its image pull keeps failing (pulls.py).
    hold: Callable[["Operation", float], bool] | None = None

    def document(self) -> dict:
        doc: dict[str, Any] = {"id": self.path, "name": self.id, "status": self.status,
                               "startTime": _iso(self.started)}
        if self.status != "InProgress":
            doc["endTime"] = _iso(self.done_at)
        if self.status == "Failed" and self.failure:
            doc["error"] = {"code": self.failure[0], "message": self.failure[1]}
        return doc


@dataclass
class Resource:
    id: str
    type: str
    doc: dict
    secrets: dict = field(default_factory=dict)    # write-only values, never rendered by GET
    operation: Operation | None = None

    @property
    def busy(self) -> bool:
        return self.operation is not None and self.operation.status == "InProgress"

    @property
    def properties(self) -> dict:
        return self.doc.setdefault("properties", {})


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def now_iso() -> str:
    return _iso(time.time())


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.resources: dict[str, Resource] = {}
            self.operations: dict[str, Operation] = {}
            # Names taken by other Azure customers: kind ("storage", "registry", "sql") -> names.
            self.taken_elsewhere: dict[str, set[str]] = {}
            self.unregistered: set[str] = set()       # lower-cased provider namespaces
            self.replication_delay = 0                # PrincipalNotFound answers per new identity
            self.pending_replication: dict[str, int] = {}
            self.job_outcomes: dict[str, str] = {}    # lower job id -> status of next executions
            self.app_endpoints: dict[str, dict] = {}  # lower app id -> {"backend": (host, port), "version": str}
            # ACR data plane and Tasks (providers/tasks.py, registry_front.py, blobs.py):
            self.registry_backend: str | None = None  # "host:port" of the real registry behind the front
            self.runs: dict[str, Any] = {}            # lower run id -> tasks.RunState
            self.blobs: dict[str, Any] = {}           # "container/name" -> blobs.Blob
            # Registry images without a real registry (registry_catalog.py): host -> repository -> Repository
            self.registry_images: dict[str, dict[str, Any]] = {}
            self.role_propagation_delay = 0.0         # seconds before a role assignment reaches data planes
            self.pull_timeout = 900.0                 # seconds a revision keeps retrying a failing pull
            self.pull_waits: dict[str, str] = {}      # lower revision id -> why its replica waits (ImagePullBackOff)
            self.log_state: Any = None                # logstreams.LogState: log-stream tokens and fed lines

    # -- resources -------------------------------------------------------------------------
    def get(self, rid: str) -> Resource | None:
        return self.resources.get(rid.lower())

    def put(self, res: Resource) -> Resource:
        self.resources[res.id.lower()] = res
        return res

    def remove(self, rid: str) -> list[Resource]:
        """Delete a resource and everything nested under its id."""
        key = rid.lower()
        gone = [r for k, r in self.resources.items() if k == key or k.startswith(key + "/")]
        for r in gone:
            del self.resources[r.id.lower()]
        return gone

    def of_type(self, rtype: str, under: str = "") -> list[Resource]:
        prefix = under.lower() + "/" if under else ""
        return [r for k, r in self.resources.items()
                if r.type.lower() == rtype.lower() and k.startswith(prefix)]

    # -- operations ------------------------------------------------------------------------
    def new_operation(self, resource_id: str, kind: str, duration: float) -> Operation:
        op_id = str(uuid.uuid4())
        now = time.time()
        op = Operation(op_id, resource_id, kind, done_at=now + duration, started=now)
        self.operations[op_id] = op
        return op

    def settle(self) -> None:
        now = time.time()
        for op in list(self.operations.values()):
            if op.status == "InProgress" and op.done_at <= now:
                if op.hold is not None and op.failure is None and op.hold(op, now):
                    continue
                self.finish(op)

    def finish(self, op: Operation) -> None:
        op.status = "Failed" if op.failure else "Succeeded"
        for callback in op.on_failure if op.failure else op.on_success:
            callback()
