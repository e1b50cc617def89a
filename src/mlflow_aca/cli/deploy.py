"""`mlflow-aca deploy`: create or update the container app and wait for a healthy revision."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.adopt import AdoptOption, adopted
from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "deploy", "Create or update the container app and wait until its revision is healthy.")
def deploy(
    run: Run,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    image: Annotated[str | None, typer.Option(help="Deploy this image reference instead of the "
                                              "one built from the template.")] = None,
    adopt: AdoptOption = None,
) -> None:
    from mlflow_aca import deployment
    from mlflow_aca.imageref import checked_image

    image = checked_image(image)
    with run.azure(dry_run=dry_run) as ctx, run.progress() as reporter:
        ctx.adopt = adopted(adopt)
        outcome = deployment.deploy(ctx, reporter, image=image)
    data = {"dry_run": dry_run, **outcome.as_data()}
    run.succeed(data, lambda out: outcome_table(out, data, title="Plan" if dry_run else "Deployed"))
