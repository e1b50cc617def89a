"""`mlflow-aca plan`: what provision and deploy would create, change or leave. Writes nothing."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.adopt import AdoptOption, adopted
from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command


@command(app, "plan", "Show what provision and deploy would create, change or leave; writes nothing.")
def plan(
    run: Run,
    # The plan is for the deploy that would follow, which takes --image: without it, after a
    # `deploy --image X` every plan would show the app (and job) going back to the template's
    # image. Reading the deployed image instead would hide exactly that change, which a bare
    # `deploy` makes; so plan takes the same option, checked the same way (terraform plans with
    # the same variables as apply).
    image: Annotated[str | None, typer.Option(help="Plan a deploy of this image reference (as `deploy "
                                              "--image`) instead of the one built from the template.")] = None,
    adopt: AdoptOption = None,
) -> None:
    from mlflow_aca import deployment
    from mlflow_aca.cli.plan_view import image_notices, plan_data, show_plan
    from mlflow_aca.imageref import checked_image

    image = checked_image(image)
    with run.azure(dry_run=True) as ctx, run.progress() as reporter:
        ctx.adopt = adopted(adopt)
        outcome = deployment.plan(ctx, reporter, image=image)
    data = {**plan_data(outcome), "sign_in": ctx.settings.describe_sign_in(),
            "notices": image_notices(ctx.settings, image_given=image is not None)}

    def show(out) -> None:
        show_plan(out, data, image_given=image is not None)
        if data["sign_in"]["mode"] == "none":
            reach = ", ".join(data["sign_in"]["reachable_from"])
            out.print(f"\nWARNING: OPEN SERVER: auth = none, no sign-in in front of MLflow; anyone "
                      f"from {reach} can read, change and delete everything in it.",
                      style="bold red", markup=False)

    run.succeed(data, show)
