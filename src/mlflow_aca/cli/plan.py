"""`mlflow-aca plan`: Show what provision and deploy would create, change or leave; writes nothing."""

from __future__ import annotations

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "plan", "Show what provision and deploy would create, change or leave; writes nothing.")
def plan(
    run: Run,
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca plan` is not available in this version of mlflow-aca; "
                            "nothing was changed.")
