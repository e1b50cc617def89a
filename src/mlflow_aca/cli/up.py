"""`mlflow-aca up`: build, push, provision and deploy, overlapping what can overlap."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "up", "Build, push, provision and deploy in one go, overlapping what can overlap.")
def up(
    run: Run,
    image: Annotated[str | None, typer.Option(help="Deploy this existing image reference and "
                                              "skip build and push.")] = None,
) -> None:
    from mlflow_aca import deployment

    with run.azure() as ctx, run.progress("up") as reporter:
        outcome = deployment.up(ctx, reporter, image=image)
    data = outcome.as_data()
    if image is None:
        data["skipped"] = ["build", "push"]
        run.note("Build and push are not available in this version: deploying the image the "
                 "template names, which must already be in the registry.")
    run.succeed(data, lambda out: outcome_table(out, data, title="Up"))
