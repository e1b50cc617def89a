"""Command-line entry point: Typer wiring only. Commands live one per module."""

from __future__ import annotations

import sys

import typer

from mlflow_aca.cli import (  # noqa: F401 - importing registers the commands
    build,
    config_cmd,
    deploy,
    env,
    init,
    logs,
    plan,
    provision,
    push,
    status,
    teardown,
    up,
)
from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import error_envelope, wants_json, write_json
from mlflow_aca.errors import ExitCode, UsageError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Errors inside a command are handled by its boundary; this handles the ones
    raised while parsing the command line, before any command runs."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args, prog_name="mlflow-aca", standalone_mode=False)
    except typer.TyperException as exc:  # the parser's usage errors (exit code 2)
        code = getattr(exc, "exit_code", ExitCode.USAGE)
        if wants_json(args):
            name = _command_name(exc)
            hint = f"See `{'mlflow-aca ' + name if name != 'mlflow-aca' else name} --help`."
            write_json(error_envelope(name, UsageError(exc.format_message(), hint=hint)))
        else:
            exc.show(file=sys.stderr) if hasattr(exc, "show") else sys.stderr.write(f"{exc}\n")
    except typer.Abort:  # Ctrl-C or end of input at a prompt
        sys.stderr.write("Aborted.\n")
        code = ExitCode.INTERRUPTED
    sys.exit(int(code or 0))


def _command_name(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return ctx.info_name if ctx is not None and ctx.parent is not None else "mlflow-aca"
