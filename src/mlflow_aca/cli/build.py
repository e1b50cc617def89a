"""`mlflow-aca build`: render templates/Dockerfile.j2 and build the server image."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command

REMOTE_HELP = "Build with ACR Tasks in Azure (and push there) or with the local engine (default: local " \
              "when an engine answers, else remote)."
BUILD_ARG_HELP = "A build argument, KEY=VALUE or KEY to take $KEY (repeatable), e.g. HTTPS_PROXY."


@command(app, "build", "Render the Dockerfile and build the image (local Docker engine, or ACR "
         "Tasks with --remote).")
def build(
    run: Run,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the rendered Dockerfile and "
                                          "the image tag; build nothing.")] = False,
    remote: Annotated[bool | None, typer.Option("--remote/--local", help=REMOTE_HELP,
                                                show_default=False)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use cached layers.")] = False,
    pull: Annotated[bool, typer.Option("--pull", help="Pull a newer base image first (local builds).")] = False,
    build_arg: Annotated[list[str] | None, typer.Option("--build-arg", help=BUILD_ARG_HELP,
                                                        show_default=False)] = None,
) -> None:
    from mlflow_aca.supply_chain import notices
    from mlflow_aca.template import render_image

    image = render_image(run.settings())
    # What this image does not pin (base image digest, hashed dependencies): said before the
    # build, and in the JSON result.
    unpinned = notices(run.settings())
    if dry_run:
        if run.json:
            run.succeed({"dockerfile": image.dockerfile, "image": image.reference, "tag": image.tag,
                         "notices": unpinned})
        else:
            sys.stdout.write(image.dockerfile)
            run.note(f"image: {image.reference}")
            _note(run, unpinned)
        return
    _note(run, unpinned)
    from mlflow_aca import image as images

    options = images.BuildOptions.from_flags(no_cache=no_cache, pull=pull, build_args=build_arg or ())
    use_remote = images.choose_remote(remote)
    if use_remote and remote is None:
        run.note("No Docker engine answers here: building in Azure with ACR Tasks (--local to refuse).")
    try:
        build_with = _remote if use_remote else _local
        result = build_with(run, options, image.reference)
    except images.TasksNotAllowed as refused:
        if not (refused.local_possible and _accept_local_build(run, refused)):
            raise
        result = _local(run, options, image.reference)
    run.succeed({**result.as_data(), "notices": unpinned}, lambda out: _show(out, result))


def _note(run: Run, notices: list[str]) -> None:
    for notice in notices:
        run.note(f"Notice: {notice}")


def _local(run: Run, options: Any, reference: str) -> Any:
    from mlflow_aca import image as images

    with run.progress() as reporter:
        return images.run_step(reporter, images.BUILD_KEY, f"build {reference}",
                               lambda: images.build_local(run.settings(), reporter, options))


def _remote(run: Run, options: Any, reference: str) -> Any:
    from mlflow_aca import image as images

    with run.azure() as ctx, run.progress() as reporter:
        return images.run_step(reporter, images.REMOTE_KEY, f"build {reference} (ACR Tasks)",
                               lambda: images.build_remote(ctx, reporter, options))


def _accept_local_build(run: Run, refused: Any) -> bool:
    """Offer the local build ACR Tasks' refusal leaves: ask at a terminal, take it with --yes."""
    if run.yes:
        run.note(f"{refused.message} Building locally instead (--yes).")
        return True
    if not run.interactive:
        return False
    run.note(refused.message)
    return typer.confirm("A Docker engine answers here. Build locally instead?", default=True, err=True)


def _show(out: Any, result: Any) -> None:
    if result.mode == "remote":
        out.print(f"Built and pushed {result.image} in ACR Tasks (run {result.run_id}, {result.digest}) "
                  f"in {result.seconds:.1f}s", markup=False)
        return
    cached = ", every step from cache" if result.cached else ""
    size = f", {result.size_bytes / 1e6:.0f} MB" if result.size_bytes else ""
    out.print(f"Built {result.image} in {result.seconds:.1f}s{size}{cached}", markup=False)
