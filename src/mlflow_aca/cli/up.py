"""`mlflow-aca up`: Build, push, provision and deploy, overlapping what can overlap."""

from __future__ import annotations

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "up", "Build, push, provision and deploy, overlapping what can overlap.")
def up(
    run: Run,
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca up` is not available in this version of mlflow-aca; "
                            "nothing was changed.")
