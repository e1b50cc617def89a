"""`mlflow-aca plan`: what provision and deploy would create, change or leave. Writes nothing."""

from __future__ import annotations

from mlflow_aca.cli.adopt import AdoptOption, adopted
from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "plan", "Show what provision and deploy would create, change or leave; writes nothing.")
def plan(run: Run, adopt: AdoptOption = None) -> None:
    from mlflow_aca import deployment

    with run.azure(dry_run=True) as ctx, run.progress() as reporter:
        ctx.adopt = adopted(adopt)
        outcome = deployment.plan(ctx, reporter)
    data = {**outcome.as_data(), "sign_in": ctx.settings.describe_sign_in()}

    def show(out) -> None:
        outcome_table(out, data, title="Plan")
        if data["sign_in"]["mode"] == "none":
            reach = ", ".join(data["sign_in"]["reachable_from"])
            out.print(f"\nWARNING: OPEN SERVER: auth = none, no sign-in in front of MLflow; anyone "
                      f"from {reach} can read, change and delete everything in it.",
                      style="bold red", markup=False)

    run.succeed(data, show)
