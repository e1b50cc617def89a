"""`mlflow-aca provision`: Create or converge every Azure resource except the container app."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "provision", "Create or converge every Azure resource except the container app.")
def provision(
    run: Run,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the differences; write nothing.")] = False,
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca provision` is not available in this version of mlflow-aca; "
                            "nothing was changed.")
