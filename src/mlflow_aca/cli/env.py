"""`mlflow-aca env`: shell lines a client needs (tracking URI, and the OTEL variable fix)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "env", "Print MLFLOW_TRACKING_URI and the fix for the OpenTelemetry variables "
         "Container Apps injects, as shell lines.")
def env(
    run: Run,
    shell: Annotated[Literal["bash", "zsh", "fish", "powershell"], typer.Option(
        help="Shell syntax to print.")] = "bash",
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca env` is not available in this version of mlflow-aca.")
