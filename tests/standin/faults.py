"""Scripted faults: a queue of misbehaviours, each bound to a route (method + path regex).

The first queued fault whose method and path match a request fires and uses up one of its
`times`; a fault with no times left is dropped from the queue. Faults fire before
authentication and routing, the way a throttling or failing front door would, except
`lro_failed`, which lets the request through and makes the operation it starts end Failed, and
`accepted`, which lets it through and asks the route to answer in its long-running form (202 and
a link to poll) where the REST spec allows both forms (only routes that know it honour it:
ACR Tasks `scheduleRun`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass

KINDS = ("status", "drop", "lro_failed", "accepted")


@dataclass
class Fault:
    path: str                    # regular expression searched in the request path, case-insensitive
    kind: str = "status"         # "status" (an error), "drop" (close the connection), "lro_failed", "accepted"
    method: str = "*"
    times: int = 1
    status: int = 500
    code: str = "InternalServerError"
    message: str = ""
    retry_after: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        re.compile(self.path)
        self.message = self.message or f"The request failed with {self.code} (injected by the stand-in)."

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method.upper())
                and re.search(self.path, path, re.IGNORECASE) is not None)


# -- the faults Azure is known for, ready-made -------------------------------------------------
def throttled(path: str, *, retry_after: int = 0, method: str = "*", times: int = 1) -> Fault:
    return Fault(path, method=method, times=times, status=429, code="SubscriptionRequestsThrottled",
                 message="Number of requests for subscription exceeded the limit. Please try again later.",
                 retry_after=retry_after)


def server_error(path: str, *, status: int = 500, method: str = "*", times: int = 1) -> Fault:
    code = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
            504: "GatewayTimeout"}.get(status, "InternalServerError")
    return Fault(path, method=method, times=times, status=status, code=code,
                 message=f"The server encountered an error ({code}). Please retry the request.")


def dropped(path: str, *, method: str = "*", times: int = 1) -> Fault:
    return Fault(path, kind="drop", method=method, times=times)


def lro_failed(path: str, code: str, message: str = "", *, method: str = "*", times: int = 1) -> Fault:
    return Fault(path, kind="lro_failed", method=method, times=times, code=code,
                 message=message or f"The operation failed with code '{code}'.")


def missing_registration(path: str, namespace: str, *, method: str = "*", times: int = 1) -> Fault:
    return Fault(path, method=method, times=times, status=409, code="MissingSubscriptionRegistration",
                 message=f"The subscription is not registered to use namespace '{namespace}'. "
                         "See https://aka.ms/rps-not-found for how to register subscriptions.")


def operation_in_progress(path: str, *, method: str = "*", times: int = 1) -> Fault:
    return Fault(path, method=method, times=times, status=409, code="AnotherOperationInProgress",
                 message="Another operation is in progress on the resource. Please retry later.")


def principal_not_found(path: str = r"/providers/Microsoft\.Authorization/roleAssignments/", *,
                        times: int = 1) -> Fault:
    return Fault(path, method="PUT", times=times, status=400, code="PrincipalNotFound",
                 message="Principal does not exist in the directory. If you are creating this principal "
                         "and then immediately assigning a role, this error might be related to a "
                         "replication delay.")


class FaultQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


def tasks_not_allowed(path: str = r"/registries/[^/]+/scheduleRun$", *, times: int = 1) -> Fault:
    """What a subscription that may not use ACR Tasks (e.g. a free trial) is told."""
    return Fault(path, method="POST", times=times, status=400, code="TasksOperationsNotAllowed",
                 message="ACR Tasks requests for the registry are not permitted. Please file an Azure support "
                         "request at http://aka.ms/azuresupport for assistance.")


def run_failed(message: str = "The command '/bin/sh -c pip install' returned a non-zero code: 1", *,
               times: int = 1) -> Fault:
    """The next scheduled ACR Tasks run fails, its log ending with `message`."""
    return Fault(r"/registries/[^/]+/scheduleRun$", kind="lro_failed", method="POST", times=times,
                 code="RunFailed", message=message)


def schedule_run_accepted(*, times: int = 1) -> Fault:
    """The next `scheduleRun` is answered 202 with Location and Azure-AsyncOperation links, the run
    then read from the Location link. Registries_ScheduleRun is `x-ms-long-running-operation` with
    responses 200 and 202 in the 2019-06-01-preview spec (Azure/azure-rest-api-specs,
    specification/containerregistry/.../2019-06-01-preview/containerregistry_build.json); the
    2025-03-01-preview spec lists 200 only. A client must follow both."""
    return Fault(r"/registries/[^/]+/scheduleRun$", kind="accepted", method="POST", times=times,
                 code="Accepted", message="scheduleRun answered in its long-running form")
