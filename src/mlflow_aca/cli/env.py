"""`mlflow-aca env`: shell lines a client needs (tracking URI, and the OTEL variable fix)."""

from __future__ import annotations

import os
from typing import Annotated, Literal

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotDeployedError


@command(app, "env", "Print MLFLOW_TRACKING_URI, the sign-in settings for the MLflow client "
         "(MLFLOW_TRACKING_AUTH, MLFLOW_ACA_AUTH_SCOPE) and the fix for the OpenTelemetry "
         "variables Container Apps injects, as shell lines (eval \"$(mlflow-aca env)\").")
def env(
    run: Run,
    shell: Annotated[Literal["bash", "zsh", "fish", "powershell"], typer.Option(
        help="Shell syntax to print.")] = "bash",
) -> None:
    from mlflow_aca import clientenv
    from mlflow_aca.resources import signin
    from mlflow_aca.resources.app import ContainerApp

    with run.azure() as ctx:
        state = ContainerApp().read(ctx)
        sign_in = signin.describe_live(signin.AuthConfig().read(ctx) if state else None)
    fqdn = ((state or {}).get("properties", {}).get("configuration", {}).get("ingress") or {}).get("fqdn")
    if not fqdn:
        raise NotDeployedError(
            f"The container app {ctx.names.app} is not deployed, so it has no URL yet.",
            hint="Run `mlflow-aca up` (or `mlflow-aca deploy`).")
    uri = f"https://{fqdn}"
    lines = clientenv.shell_lines(uri, shell, sign_in.get("scope"))
    if not sign_in["enabled"]:
        run.note("Warning: the server has no sign-in (auth = none): anyone who can reach it can use it.")
    present = clientenv.injected_present(os.environ)
    if present:
        run.note(f"Warning: this environment sets {', '.join(present)}: MLflow would send traces "
                 "to that collector instead of the tracking server. The lines below remove them.")
    run.succeed({"tracking_uri": uri, "shell": shell, "lines": lines, "sign_in": sign_in,
                 "variables": clientenv.client_settings(uri, sign_in.get("scope")),
                 "injected_variables_present": present},
                lambda out: out.print("\n".join(lines), markup=False, highlight=False))
