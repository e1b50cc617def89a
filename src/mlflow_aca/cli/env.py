"""`mlflow-aca env`: shell lines a client needs (tracking URI, and the OTEL variable fix)."""

from __future__ import annotations

import os
from typing import Annotated, Literal

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import OperationError


@command(app, "env", "Print MLFLOW_TRACKING_URI and the fix for the OpenTelemetry variables "
         "Container Apps injects, as shell lines (eval \"$(mlflow-aca env)\").")
def env(
    run: Run,
    shell: Annotated[Literal["bash", "zsh", "fish", "powershell"], typer.Option(
        help="Shell syntax to print.")] = "bash",
) -> None:
    from mlflow_aca import clientenv
    from mlflow_aca.resources.app import ContainerApp

    with run.azure() as ctx:
        state = ContainerApp().read(ctx)
    fqdn = ((state or {}).get("properties", {}).get("configuration", {}).get("ingress") or {}).get("fqdn")
    if not fqdn:
        raise OperationError(
            f"The container app {ctx.names.app} is not deployed, so it has no URL yet.",
            code="NotDeployed", hint="Run `mlflow-aca up` (or `mlflow-aca deploy`).")
    uri = f"https://{fqdn}"
    lines = clientenv.shell_lines(uri, shell)
    present = clientenv.injected_present(os.environ)
    if present:
        run.note(f"Warning: this environment sets {', '.join(present)}: MLflow would send traces "
                 "to that collector instead of the tracking server. The lines below remove them.")
    run.succeed({"tracking_uri": uri, "shell": shell, "lines": lines,
                 "injected_variables_present": present},
                lambda out: out.print("\n".join(lines), markup=False, highlight=False))
