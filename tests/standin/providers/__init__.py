"""Resource providers: each module registers its routes on the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import StandinApp


def register_all(app: "StandinApp") -> None:
    from . import (authconfigs, authorization, containerapps, core, environments, jobs, loganalytics, msi, registry,
                   sql, storage, tags, tasks)
    for module in (core, msi, loganalytics, storage, registry, tasks, sql, environments, containerapps, authconfigs,
                   jobs, authorization, tags):
        module.register(app)
