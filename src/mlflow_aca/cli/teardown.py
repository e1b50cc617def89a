"""`mlflow-aca teardown`: delete compute; keep data unless --delete-data (SPEC §6)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import NotAvailableError


@command(app, "teardown", "Delete the container app and its environment; SQL, storage, registry, "
         "identity and logs stay. --delete-data deletes every tagged resource.")
def teardown(
    run: Run,
    delete_data: Annotated[bool, typer.Option("--delete-data", help="Also delete data: every "
                                              "resource the tool tagged (asks you to type the "
                                              "deployment name; --yes without a TTY).")] = False,
) -> None:
    run.settings()
    raise NotAvailableError("`mlflow-aca teardown` is not available in this version of "
                            "mlflow-aca; nothing was deleted.")
