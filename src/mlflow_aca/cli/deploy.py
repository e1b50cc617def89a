"""`mlflow-aca deploy`: Create or update the container app and wait for a healthy revision."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "deploy", "Create or update the container app and wait for a healthy revision.")
def deploy(
    run: Run,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the differences; write nothing.")] = False,
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca deploy` is not available in this version of mlflow-aca; "
                            "nothing was changed.")
