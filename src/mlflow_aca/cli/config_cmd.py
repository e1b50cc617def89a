"""`mlflow-aca config`: the resolved configuration, every derived name, both URIs, the cloud."""

from __future__ import annotations

from typing import Any

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command


@command(app, "config", "Print the resolved configuration: settings, derived names, URIs "
         "(secrets redacted) and the cloud.")
def config(run: Run) -> None:
    settings = run.settings()
    view = settings.describe(settings.cloud_info())
    run.succeed(view, lambda out: _print(out, view))


def _print(out: Any, view: dict[str, Any]) -> None:
    # Plain aligned lines rather than a table: URIs must stay copyable, unwrapped.
    for title, rows in (("Resource names", view["names"]), ("URIs", view["uris"]),
                        ("Cloud", view["cloud"]), ("Server", view["server"]),
                        ("Settings", view["settings"])):
        out.print(f"[bold]{title}[/]")
        width = max(len(key) for key in rows)
        for key, value in rows.items():
            out.print(f"  {key.ljust(width)}  {'' if value is None else value}", markup=False,
                      soft_wrap=True)
        out.print()
