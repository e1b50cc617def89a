"""Create/read/update/delete for every resource kind the tool manages, through the SDKs.

Each kind is described once (which client, which operations, which model) in its service's
module; the three verbs here work for all of them on REST-shaped dictionaries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflow_aca.azure import rest
from mlflow_aca.azure.session import AzureSession


@dataclass(frozen=True)
class Kind:
    """How to reach one resource type: `ids` are the names that address it (resource group,
    parent, name...), passed positionally to the SDK operations."""

    label: str
    client: str
    get: Callable[..., Any]
    put: Callable[..., Any]
    delete: Callable[..., Any] | None
    model: str  # "package.module:Class", imported only when a body is sent

    def model_type(self) -> Any:
        module, _, name = self.model.partition(":")
        return getattr(importlib.import_module(module), name)


def read(session: AzureSession, kind: Kind, *ids: str) -> dict[str, Any] | None:
    client = session.client(kind.client)
    return rest.get_or_none(f"read {kind.label} {ids[-1]}", lambda: kind.get(client, *ids))


def write(session: AzureSession, kind: Kind, *ids: str, body: dict[str, Any]) -> dict[str, Any]:
    client = session.client(kind.client)
    model = rest.to_model(kind.model_type(), body)
    return rest.run(f"write {kind.label} {ids[-1]}", lambda: kind.put(client, *ids, model))


def remove(session: AzureSession, kind: Kind, *ids: str) -> bool:
    if kind.delete is None:
        raise ValueError(f"{kind.label} cannot be deleted on its own")
    client = session.client(kind.client)
    return rest.delete(f"delete {kind.label} {ids[-1]}", lambda: kind.delete(client, *ids))
