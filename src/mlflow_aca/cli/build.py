"""`mlflow-aca build`: render templates/Dockerfile.j2 and build the server image."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "build", "Render the Dockerfile and build the image (local Docker engine, or ACR "
         "Tasks with --remote).")
def build(
    run: Run,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the rendered Dockerfile and "
                                          "the image tag; build nothing.")] = False,
    remote: Annotated[bool | None, typer.Option("--remote/--local", help="Build with ACR Tasks "
                                                "or the local engine (default: local when an "
                                                "engine answers, else remote).",
                                                show_default=False)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use cached layers.")] = False,
) -> None:
    from mlflow_aca.template import render_image

    image = render_image(run.settings())
    if dry_run:
        if run.json:
            run.succeed({"dockerfile": image.dockerfile, "image": image.reference, "tag": image.tag})
        else:
            sys.stdout.write(image.dockerfile)
            run.note(f"image: {image.reference}")
        return
    raise NotAvailableError(
        "Building images is not available in this version of mlflow-aca.",
        hint="`mlflow-aca build --dry-run` prints the Dockerfile to build with your own tooling.",
    )
