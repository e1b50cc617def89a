"""Latency model: typical real durations per resource type, scaled by one factor.

Durations are the middle of what public issue threads report (see notes/azure-sdk.md).
A scale of 0 (the default) makes every operation complete at its first poll; `real/100`
keeps the relative order of a real deployment at a hundredth of its length.
"""

from __future__ import annotations

# seconds, for the operation that creates or updates the type ("delete:<type>" for deletion)
TYPICAL_SECONDS = {
    "resourceGroups": 3,
    "delete:resourceGroups": 60,
    "userAssignedIdentities": 2,
    "roleAssignments": 2,
    "workspaces": 25,
    "storageAccounts": 30,
    "blobContainers": 1,
    "registries": 20,
    "servers": 75,
    "databases": 90,
    "firewallRules": 5,
    "administrators": 30,
    "managedEnvironments": 420,
    "containerApps": 60,
    "jobs": 30,
    "jobStart": 5,
    "jobExecutions": 60,
    "runs": 150,    # an ACR Tasks quick run (az acr build)
}
DEFAULT_SECONDS = 10


def parse_scale(text: str) -> float:
    """`0`, `0.01`, `real` (= 1) or `real/100`."""
    text = text.strip().lower()
    if text == "real":
        return 1.0
    if text.startswith("real/"):
        return 1.0 / float(text[len("real/"):])
    value = float(text)
    if value < 0:
        raise ValueError("latency scale must be >= 0")
    return value


class Latency:
    def __init__(self, scale: float = 0.0) -> None:
        self.scale = scale

    def seconds(self, key: str) -> float:
        return TYPICAL_SECONDS.get(key, DEFAULT_SECONDS) * self.scale
