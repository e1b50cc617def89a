"""`mlflow-aca plan`: what provision and deploy would create, change or leave. Writes nothing."""

from __future__ import annotations

from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "plan", "Show what provision and deploy would create, change or leave; writes nothing.")
def plan(run: Run) -> None:
    from mlflow_aca import deployment

    with run.azure(dry_run=True) as ctx, run.progress() as reporter:
        outcome = deployment.plan(ctx, reporter)
    data = outcome.as_data()
    run.succeed(data, lambda out: outcome_table(out, data, title="Plan"))
