"""What every command shares: the global options, configuration flags, the output contract
(SPEC §7) and the error boundary.

Commands are registered with `@command(app, ...)`. The decorator adds `--config`, `--json`,
`--yes` and `--verbose` to the command's own options, accepts any configuration key as a flag
(`--memory 4Gi`), and runs the body inside the one error boundary: expected errors become a
paragraph (or a JSON envelope) and an exit code, anything else is reported as a bug.

This module is imported for `--help`: it must stay free of pydantic, Azure and Docker imports.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from mlflow_aca.errors import ExitCode, MlflowAcaError, UsageError
from mlflow_aca.redaction import redact

CONFIG_HELP = "Config file (default: ./mlflow-aca.toml, or $MLFLOW_ACA_CONFIG)."
CONFIG_FLAGS_EPILOG = (
    "Any configuration key can also be given as a flag, e.g. --memory 4Gi or "
    "--allowed-ips 203.0.113.0/24 (flags override MLFLOW_ACA_* variables, which override the "
    "file). `mlflow-aca config` lists the keys."
)

_COMMON_PARAMS = [
    inspect.Parameter(
        "config_path", inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[Path | None, typer.Option("--config", help=CONFIG_HELP,
                                                       show_default=False)],
    ),
    inspect.Parameter(
        "json_output", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--json", help="Print one JSON document on "
                                                "stdout; no live display.")],
    ),
    inspect.Parameter(
        "yes", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to "
                                                "confirmations (required without a TTY).")],
    ),
    inspect.Parameter(
        "verbose", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--verbose", "-v", help="Show details and "
                                                "tracebacks.")],
    ),
    inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
]


class Run:
    """One command invocation: its options, its configuration, and its output channel."""

    def __init__(self, command: str, ctx: typer.Context, *, config_path: Path | None,
                 json_output: bool, yes: bool, verbose: bool) -> None:
        self.command = command
        self.config_path = config_path
        self.json = json_output
        self.yes = yes
        self.verbose = verbose
        self.extra_args = list(ctx.args)
        _quiet_libraries(verbose)
        self._settings: Any = None
        self._stdout: Any = None
        self._stderr: Any = None
        # Run-wide warnings: on stderr when they arise, and in the --json envelope's "warnings".
        self.warnings: list[str] = []

    # --- terminals ---------------------------------------------------------------------------
    @property
    def interactive(self) -> bool:
        """Prompts and live displays only for a person at a terminal."""
        return not self.json and sys.stdin.isatty() and sys.stderr.isatty()

    @property
    def stdout(self) -> Any:
        """Human results (tables, summaries); redacted like every other output path."""
        if self._stdout is None:
            from mlflow_aca.reporting import console

            self._stdout = console(highlight=False, soft_wrap=True)
        return self._stdout

    @property
    def stderr(self) -> Any:
        """Diagnostics and the live display; redacted (reporting.console)."""
        if self._stderr is None:
            from mlflow_aca.reporting import console

            self._stderr = console(stderr=True, highlight=False)
        return self._stderr

    def reporter(self) -> Any:
        """Live display for a person at a terminal; plain lines for logs; nothing for --json."""
        from mlflow_aca.reporting import PlainReporter, RichReporter, SilentReporter

        if self.json:
            return SilentReporter()
        if not self.stderr.is_terminal:
            return PlainReporter(sys.stderr)
        return RichReporter(self.stderr)

    @contextmanager
    def progress(self) -> Iterator[Any]:
        """A reporter for long work, closed however the work ends."""
        reporter = self.reporter()
        try:
            yield reporter
        finally:
            reporter.close()

    @contextmanager
    def azure(self, *, dry_run: bool = False) -> Iterator[Any]:
        """The deployment's Azure context (cloud, credential, subscription) for this command."""
        from mlflow_aca import deployment

        ctx = deployment.connect(self.settings(), dry_run=dry_run)
        try:
            yield ctx
        finally:
            deployment.close(ctx)

    def note(self, message: str) -> None:
        """A diagnostic line for people (stderr); nothing in JSON mode."""
        if not self.json:
            self.stderr.print(redact(message), highlight=False)

    def warn(self, message: str) -> None:
        """A warning: on stderr at once (in JSON mode too: it must be seen before the work it
        warns about, and stdout keeps its one document), and in the JSON envelope."""
        message = redact(message)
        self.warnings.append(message)
        sys.stderr.write(f"Warning: {message}\n")
        sys.stderr.flush()

    # --- configuration -----------------------------------------------------------------------
    def config_overrides(self) -> dict[str, Any]:
        from mlflow_aca.cli.flags import parse_config_flags

        return parse_config_flags(self.extra_args)

    def settings(self) -> Any:
        """The resolved configuration (file < environment < flags), loaded once."""
        if self._settings is None:
            from mlflow_aca.config import load_settings

            overrides = self.config_overrides()
            self._settings = load_settings(self.config_path, overrides=overrides)
            self._warn_arm_endpoint_from_file(overrides)
        return self._settings

    def _warn_arm_endpoint_from_file(self, overrides: dict[str, Any]) -> None:
        """arm_endpoint decides where the operator's credential signs in and where its tokens
        go, and a config file may come with a repository: say so before any token is requested
        (settings are loaded before any Azure work). A flag or MLFLOW_ACA_ARM_ENDPOINT is the
        operator's own choice and needs no warning."""
        endpoint = self._settings.arm_endpoint
        if not endpoint or "arm_endpoint" in overrides or os.environ.get("MLFLOW_ACA_ARM_ENDPOINT"):
            return
        path = self.config_path or os.environ.get("MLFLOW_ACA_CONFIG") or "mlflow-aca.toml"
        self.warn(f"arm_endpoint = {endpoint} comes from the config file {path}: your Azure "
                  "credential's tokens will be sent to that endpoint and to the login endpoint "
                  "its metadata names. Continue only if you trust this file; set the endpoint with "
                  "--arm-endpoint or MLFLOW_ACA_ARM_ENDPOINT to make it your own choice.")

    def confirm(self, question: str, *, expected: str | None = None) -> None:
        """Ask before something destructive; without a TTY (or with --json) demand --yes."""
        if self.yes:
            return
        if not self.interactive:
            raise UsageError(
                f"{question} Refusing without confirmation: no terminal to ask on.",
                code="confirmation_required",
                hint="Re-run with --yes to confirm non-interactively.",
            )
        if expected is None:
            if typer.confirm(question, default=False, err=True):
                return
        elif typer.prompt(f"{question} Type {expected!r} to confirm", err=True,
                          default="", show_default=False) == expected:
            return
        raise UsageError("Not confirmed; nothing was changed.", code="not_confirmed")

    # --- results -----------------------------------------------------------------------------
    def succeed(self, data: dict[str, Any], human: Callable[[Any], None] | None = None) -> None:
        if self.json:
            write_json(self._with_warnings({"ok": True, "command": self.command, "data": data}))
        elif human is not None:
            human(self.stdout)

    def fail(self, error: MlflowAcaError) -> int:
        if self.json:
            write_json(self._with_warnings(error_envelope(self.command, error)))
        else:
            print_error(error, verbose=self.verbose)
        return int(error.exit_code)


    def _with_warnings(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Run-wide warnings as a list of strings, like `status`'s data["warnings"]; absent
        when there are none, so the envelope keeps SPEC §7's shape."""
        return {**envelope, "warnings": list(self.warnings)} if self.warnings else envelope


def _quiet_libraries(verbose: bool) -> None:
    """The SDKs log warnings (e.g. every credential DefaultAzureCredential tried) to stderr;
    the tool reports failures itself, so their logs only show with --verbose."""
    import logging

    for name in ("azure", "urllib3", "docker", "msal"):
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.CRITICAL)


def command(app: typer.Typer, name: str, help: str, *, epilog: str | None = CONFIG_FLAGS_EPILOG,
            **settings: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `func(run, **own_options)` as a command with the shared options and boundary."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(func, eval_str=True).parameters.values())[1:]

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> None:
            common = {p.name: kwargs.pop(p.name) for p in _COMMON_PARAMS}
            ctx = common.pop("ctx")
            run = Run(name, ctx, **common)
            code = run_in_boundary(run, lambda: func(run, **kwargs))
            if code:
                raise typer.Exit(code)

        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + _COMMON_PARAMS
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer must see the new signature, not the function's own
        app.command(
            name, help=help, epilog=epilog,
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            **settings,
        )(wrapper)
        return func

    return register


def run_in_boundary(run: Run, body: Callable[[], None]) -> int:
    """The error boundary: expected failures → message and exit code, the rest → a bug report."""
    try:
        body()
        return 0
    except MlflowAcaError as error:
        return run.fail(error)
    except KeyboardInterrupt:
        return _interrupted(run)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary exists to catch what nothing else did
        bug = MlflowAcaError(
            f"Unexpected error: {type(exc).__name__}: {exc}. This is a bug in mlflow-aca.",
            code="internal_error",
            hint="Re-run with --verbose for the traceback and report it.",
        )
        if run.verbose and not run.json:
            sys.stderr.write(redact(traceback.format_exc()))
        return run.fail(bug)


def _interrupted(run: Run) -> int:
    error = MlflowAcaError(
        "Interrupted. Operations already accepted by Azure may still complete; rerunning the "
        "same command converges.",
        code="interrupted",
    )
    error.exit_code = ExitCode.INTERRUPTED
    return run.fail(error)


def error_envelope(command: str, error: MlflowAcaError) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "ok": False,
        "command": command,
        "error": {"code": error.code, "message": redact(error.message),
                  "hint": redact(error.hint) if error.hint else None},
    }
    if error.data:
        envelope["data"] = error.data
    return envelope


def print_error(error: MlflowAcaError, *, verbose: bool = False) -> None:
    text = f"Error: {redact(error.message)}"
    if error.code and error.code not in ("Error", "Usage"):
        text += f" [{error.code}]"
    if error.hint:
        text += f"\nHint: {redact(error.hint)}"
    if verbose and error.__cause__ is not None:
        text += "\n" + "".join(traceback.format_exception(error.__cause__))
    sys.stderr.write(redact(text) + "\n")


def write_json(document: dict[str, Any]) -> None:
    sys.stdout.write(redact(json.dumps(document, indent=2, default=str)) + "\n")
    sys.stdout.flush()


def wants_json(argv: list[str]) -> bool:
    return "--json" in argv

