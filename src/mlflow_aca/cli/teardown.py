"""`mlflow-aca teardown`: delete compute; keep data unless --delete-data (SPEC §6)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "teardown", "Delete the container app and its environment; SQL, storage, registry, "
         "identity and logs stay. --delete-data deletes every tagged resource.")
def teardown(
    run: Run,
    delete_data: Annotated[bool, typer.Option("--delete-data", help="Also delete data: every "
                                              "resource the tool tagged (asks you to type the "
                                              "deployment name; --yes without a TTY).")] = False,
) -> None:
    from mlflow_aca import teardown as teardown_module

    settings = run.settings()
    if delete_data:
        run.confirm(f"This deletes every experiment, run and artifact of deployment "
                    f"{settings.name!r}, and all its resources.", expected=settings.name)
    with run.azure() as ctx, run.progress() as reporter:
        outcome = teardown_module.teardown(ctx, reporter, delete_data=delete_data)
    data = {"delete_data": delete_data, **outcome.as_data()}
    run.succeed(data, lambda out: outcome_table(out, data, title="Teardown"))
