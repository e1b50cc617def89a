"""`mlflow-aca up`: build, push, provision and deploy, overlapping what can overlap."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.adopt import AdoptOption, adopted
from mlflow_aca.cli.app import app
from mlflow_aca.cli.build import BUILD_ARG_HELP, REMOTE_HELP
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "up", "Build, push, provision and deploy in one go, overlapping what can overlap.")
def up(
    run: Run,
    image: Annotated[str | None, typer.Option(help="Deploy this existing image reference and "
                                              "skip build and push.")] = None,
    remote: Annotated[bool | None, typer.Option("--remote/--local", help=REMOTE_HELP,
                                                show_default=False)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use cached layers.")] = False,
    build_arg: Annotated[list[str] | None, typer.Option("--build-arg", help=BUILD_ARG_HELP,
                                                        show_default=False)] = None,
    adopt: AdoptOption = None,
) -> None:
    from mlflow_aca import deployment
    from mlflow_aca import image as images
    from mlflow_aca.errors import UsageError
    from mlflow_aca.imageref import checked_image

    image = checked_image(image)
    building = [flag for flag, given in (("--remote/--local", remote is not None), ("--no-cache", no_cache),
                                         ("--build-arg", bool(build_arg))) if given]
    if image and building:
        raise UsageError(f"--image deploys an existing image; {', '.join(building)} only apply to a build.",
                         hint="Drop --image to build and push, or drop the build options.")
    options = images.BuildOptions.from_flags(no_cache=no_cache, build_args=build_arg or ())
    use_remote = image is None and images.choose_remote(remote)
    if use_remote and remote is None:
        run.note("No Docker engine answers here: building in Azure with ACR Tasks (--local to refuse).")
    with run.azure() as ctx, run.progress() as reporter:
        ctx.adopt = adopted(adopt)
        steps = [] if image else images.image_steps(ctx, reporter, remote=use_remote, options=options)
        outcome = deployment.up(ctx, reporter, image_steps=steps, image=image)
    data = outcome.as_data()
    data["image"] = image or outcome.outputs.get(steps[-1].key, {}).get("reference")
    run.succeed(data, lambda out: outcome_table(out, data, title="Up"))
