"""`mlflow-aca logs`: the server's console (or Container Apps' system events, or the latest
migration execution) through Container Apps' log stream, as `az containerapp logs show` reads it.

--json: without --follow the lines are the envelope's data (`data.lines`), one document as for
every command. With --follow it is refused: a stream that ends only at Ctrl-C can never be one
complete JSON document (SPEC §7), and a script that wants the stream reads the plain lines.
Ctrl-C ends a follow with exit 130, as every interrupted command does (SPEC §7), without a
traceback or the "operations may still complete" note: reading changes nothing.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import ExitCode, UsageError
from mlflow_aca.redaction import redact

MAX_TAIL = 300  # the log stream's own limit (az containerapp logs show: 0..300)


@command(app, "logs", "Print the MLflow server's console logs through Container Apps' log stream "
         "(--system: Container Apps' system events; --job: the latest database-migration execution).")
def logs(
    run: Run,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming new lines until Ctrl-C.")] = False,
    tail: Annotated[int, typer.Option("--tail", "-n", min=0, max=MAX_TAIL,
                                      help=f"Past lines to print first (0-{MAX_TAIL}).")] = 20,
    system: Annotated[bool, typer.Option("--system", help="Container Apps' system events for the app "
                                         "(scaling, pulls, restarts) instead of its console.")] = False,
    job: Annotated[bool, typer.Option("--job", help="The latest execution of the database-migration job.")] = False,
) -> None:
    if system and job:
        raise UsageError("--system and --job are two different streams; choose one.",
                         hint="See `mlflow-aca logs --help`.")
    if follow and run.json:
        raise UsageError("--json prints one JSON document, which a followed stream never completes.",
                         code="json_follow_unsupported",
                         hint="Drop --json to stream plain lines, or drop --follow for the lines as JSON.")
    from mlflow_aca import logs as logs_module

    with run.azure() as ctx:
        source, lines = logs_module.open_stream(ctx, system=system, job=job, tail=tail, follow=follow)
        if run.json:
            run.succeed({"source": source, "tail": tail, "lines": [redact(line) for line in lines]})
            return
        run.note(_describe(source))
        try:
            for line in lines:
                sys.stdout.write(redact(line) + "\n")
                sys.stdout.flush()  # a follow shows each line as it comes
        except KeyboardInterrupt:
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except BrokenPipeError:  # `mlflow-aca logs | head`: the reader has what it wanted
            sys.stderr.close()
            raise typer.Exit(0) from None


def _describe(source: dict) -> str:
    if source["kind"] == "system":
        return f"System events of container app {source['app']}:"
    if source["kind"] == "job":
        return (f"Migration job {source['job']}, execution {source['execution']} ({source['status']}), "
                f"replica {source['replica']}:")
    return f"Container app {source['app']}, revision {source['revision']}, replica {source['replica']}:"
