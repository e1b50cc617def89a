"""`mlflow-aca teardown`: delete compute; keep data unless --delete-data (SPEC §6). What will be
deleted and kept is listed before anything is asked or deleted."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run, command


@command(app, "teardown", "Delete the container app and its environment; SQL, storage, registry, "
         "identity and logs stay. --delete-data deletes every resource the tool created.")
def teardown(
    run: Run,
    delete_data: Annotated[bool, typer.Option("--delete-data", help="Also delete data: every "
                                              "resource the tool created (never one it adopted or "
                                              "found; asks you to type the deployment name; --yes "
                                              "without a TTY).")] = False,
) -> None:
    from mlflow_aca import teardown as teardown_module
    from mlflow_aca.errors import UsageError

    from mlflow_aca.lease import held

    settings = run.settings()
    # The lease (lease.py) is taken beside the survey's reads; teardown never runs beside a
    # deploy, and the operator is not asked to confirm a teardown that would be refused.
    with run.azure() as ctx, held(ctx, "teardown", creates_identity=False) as lease:
        survey = teardown_module.survey(ctx, delete_data=delete_data)
        run.note(survey.describe(settings.name))
        assert lease is not None
        lease.confirmed()
        if delete_data:
            try:
                run.confirm(f"This deletes the {len(survey.delete)} resources listed above, with every "
                            f"experiment, run and artifact of deployment {settings.name!r}.",
                            expected=settings.name)
            except UsageError as error:
                error.data = {"delete_data": delete_data, **survey.as_data()}
                raise
        with run.progress() as reporter:
            outcome = teardown_module.teardown(ctx, reporter, delete_data=delete_data, lease=lease)
    result = outcome.as_data()
    listed = {entry["key"] for entry in survey.keep}
    # What stayed: as surveyed, plus anything a step found not to be the tool's at its DELETE.
    kept = survey.keep + [{"key": row["key"], "resource": row["resource"], "reason": row["detail"]}
                          for row in result["resources"] if row["outcome"] == "kept" and row["key"] not in listed]
    data = {"delete_data": delete_data, **survey.as_data(), **result, "kept": kept,
            "next_steps": survey.next_steps()}

    def show(out: Any) -> None:
        outcome_table(out, data, title="Teardown")
        if data["kept"]:
            out.print("\nKept:", markup=False)
            for row in data["kept"]:
                out.print(f"  - {row['resource']} ({row['reason']})", markup=False)
        out.print(f"\n{data['next_steps']}", markup=False)

    run.succeed(data, show)
