"""`mlflow-aca status`: Show every resource's state, the app URL, revision health and MLflow's /health."""

from __future__ import annotations

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "status", "Show every resource's state, the app URL, revision health and MLflow's /health.")
def status(
    run: Run,
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca status` is not available in this version of mlflow-aca; "
                            "nothing was changed.")
