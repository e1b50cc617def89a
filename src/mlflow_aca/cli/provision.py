"""`mlflow-aca provision`: create or converge every Azure resource except the container app."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.adopt import AdoptOption, adopted
from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "provision", "Create or converge every Azure resource except the container app.")
def provision(
    run: Run,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    adopt: AdoptOption = None,
) -> None:
    from mlflow_aca import deployment

    with run.azure(dry_run=dry_run) as ctx, run.progress() as reporter:
        ctx.adopt = adopted(adopt)
        outcome = deployment.plan_provision(ctx, reporter) if dry_run else deployment.provision(ctx, reporter)
    data = {"dry_run": dry_run, **outcome.as_data()}
    run.succeed(data, lambda out: outcome_table(out, data, title="Plan" if dry_run else "Provisioned"))
