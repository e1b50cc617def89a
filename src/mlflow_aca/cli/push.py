"""`mlflow-aca push`: push the built image to the Azure Container Registry (Entra token, no admin user)."""

from __future__ import annotations

from typing import Any

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command


@command(app, "push", "Push the built image to the Azure Container Registry (Entra token, no admin user).")
def push(run: Run) -> None:
    from mlflow_aca import image
    from mlflow_aca.template import render_image

    repository = render_image(run.settings()).repository
    with run.azure() as ctx, run.progress() as reporter:
        result = image.run_step(reporter, image.PUSH_KEY, f"push image {repository}",
                                lambda: image.push_image(ctx, reporter))
    run.succeed(result.as_data(), lambda out: _show(out, result))


def _show(out: Any, result: Any) -> None:
    if result.outcome == "present":
        out.print(f"Already in the registry: {result.image} ({result.digest})", markup=False)
    else:
        out.print(f"Pushed {result.image} ({result.digest}) in {result.seconds:.1f}s", markup=False)
