"""`mlflow-aca push`: Push the built image to the Azure Container Registry (Entra token, no admin user)."""

from __future__ import annotations

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "push", "Push the built image to the Azure Container Registry (Entra token, no admin user).")
def push(
    run: Run,
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca push` is not available in this version of mlflow-aca; "
                            "nothing was changed.")
