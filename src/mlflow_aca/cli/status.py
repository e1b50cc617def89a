"""`mlflow-aca status`: resources, app URL, revision health and MLflow's /health (exit 4 when
unhealthy or absent)."""

from __future__ import annotations

from typing import Any

from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotDeployedError, UnhealthyError


@command(app, "status", "Show every resource's state, the app URL, revision health and MLflow's "
         "/health; exit 4 when unhealthy or absent.")
def status(run: Run) -> None:
    from mlflow_aca import status as status_module

    with run.azure() as ctx, run.progress() as reporter:
        report = status_module.collect(ctx, reporter)
    if not report["healthy"]:
        if not run.json:
            _print(run.stdout, report)
        # No app is the condition `env` (and any command needing the server) reports as
        # NotDeployed; the same code here lets a script test for it the same way.
        absent = any(row["key"] == "app" and row["state"] == "absent" for row in report["resources"])
        raise (NotDeployedError if absent else UnhealthyError)(
            "The deployment is unhealthy or absent: " + "; ".join(report["problems"]) + ".",
            hint="`mlflow-aca up` creates or repairs it; `mlflow-aca deploy` redeploys the app.",
            data=report,
        )
    run.succeed(report, lambda out: _print(out, report))


def _print(out: Any, report: dict[str, Any]) -> None:
    outcome_table(out, report, title="Resources")
    app_data = report.get("app") or {}
    if app_data.get("url"):
        mlflow = app_data.get("mlflow") or {}
        out.print(f"\nURL       {app_data['url']}", markup=False)
        out.print(f"revision  {app_data.get('latest_revision')}: health {app_data.get('revision_health')}, "
                  f"{app_data.get('revision_running_state')}; replicas {len(app_data.get('replicas') or [])}",
                  markup=False)
        out.print(f"MLflow    /health {mlflow.get('health') or mlflow.get('error')}, "
                  f"version {mlflow.get('version') or mlflow.get('version_error')}", markup=False)
        sign_in = app_data.get("sign_in") or {}
        if sign_in.get("enabled"):
            allowed = sign_in.get("allowed_identities", 0) + sign_in.get("allowed_groups", 0)
            out.print(f"sign-in   Entra ID, client id {sign_in.get('client_id')}; "
                      + (f"{allowed} allowed principal(s)" if allowed else "everyone in the tenant"),
                      markup=False)
    for warning in report.get("warnings") or []:
        out.print(f"\nWARNING: {warning}", style="bold red", markup=False)
    out.print("\n" + ("healthy" if report["healthy"] else "UNHEALTHY"), markup=False)
