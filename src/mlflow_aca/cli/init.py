"""`mlflow-aca init`: write a commented mlflow-aca.toml."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from mlflow_aca.cli.app import app
from mlflow_aca.cli.runtime import Run, command
from mlflow_aca.errors import ConfigError


@command(app, "init", "Write a commented mlflow-aca.toml (prompts on a TTY for what is missing).")
def init(
    run: Run,
    name: Annotated[str | None, typer.Option(help="Deployment name.")] = None,
    location: Annotated[str | None, typer.Option(help="Azure region, e.g. westeurope.")] = None,
    resource_group: Annotated[str | None, typer.Option(help="Resource group.")] = None,
    subscription: Annotated[str | None, typer.Option(help="Subscription id.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    from mlflow_aca.config import DEFAULT_CONFIG_PATH, validate_settings
    from mlflow_aca.config.load import unreadable
    from mlflow_aca.config.write import render_config_file

    path = run.config_path or Path(os.environ.get("MLFLOW_ACA_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        exists = path.exists()
    except OSError as exc:  # exists() answers False only for a missing file; a name too long
        # or a directory that cannot be searched raise, and that is the same condition every
        # other command reports for this path (exit 1), not a bug.
        raise unreadable(path, exc.strerror or str(exc)) from None
    if exists and not force:
        raise ConfigError(f"{path} already exists; nothing was written.",
                          code="ConfigExists", hint="Pass --force to overwrite it.")

    chosen: dict[str, Any] = {
        key: value
        for key, value in {"name": name, "location": location, "resource_group": resource_group,
                           "subscription_id": subscription}.items()
        if value is not None
    }
    chosen.update(run.config_overrides())
    _ask_for_missing(run, chosen)

    from mlflow_aca.config import coerce_text

    typed = {k: coerce_text(k, v) if isinstance(v, str) else v for k, v in chosen.items()}
    origin = {key: "flag or prompt" for key in typed}
    try:
        settings = validate_settings(typed, origin, path)
    except ConfigError as error:
        # The loader's hint speaks of a file to fix; init has written none.
        error.hint = (f"Nothing was written to {path}. Run init again with the value fixed (the flag "
                      "named, or the answer at the prompt).")
        raise
    written = {k: getattr(settings, k) for k in typed}

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_config_file(written), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc.strerror}.", code="ConfigUnwritable") from None

    run.succeed(
        {"path": str(path), "values": written},
        lambda out: out.print(f"Wrote {path}. Next: `mlflow-aca up` (or `mlflow-aca plan` to "
                              "see what it would create)."),
    )


def _ask_for_missing(run: Run, chosen: dict[str, Any]) -> None:
    """Prompt for the required keys on a TTY; elsewhere a missing key is a clear error."""
    questions = [("name", "Deployment name", None, True),
                 ("location", "Azure region", "westeurope", True)]
    if not os.environ.get("AZURE_SUBSCRIPTION_ID"):
        questions.append(("subscription_id", "Subscription id (blank: use AZURE_SUBSCRIPTION_ID "
                          "at run time)", "", False))
    for key, question, default, required in questions:
        if key in chosen:
            continue
        if not run.interactive:
            if required:
                raise ConfigError(
                    f"Missing {key!r}: there is no terminal to ask on.",
                    code="MissingValue",
                    hint=f"Pass --{key.replace('_', '-')} (init works from flags alone).",
                )
            continue
        while True:
            answer = typer.prompt(question, default=default, err=True,
                                  show_default=bool(default)).strip()
            problem = _problem_with(key, answer, chosen) if answer else None
            if problem is None:
                break
            # A person at a prompt gets asked again, not an exit and a file to fix.
            run.stderr.print(f"{problem.rstrip('.')}. Try again.", markup=False, highlight=False)
        if answer:
            chosen[key] = answer


# Stand-ins for required keys not yet answered, so one answer can be checked on its own.
_PLACEHOLDERS = {"name": "mlflow", "location": "westeurope"}


def _problem_with(key: str, answer: str, chosen: dict[str, Any]) -> str | None:
    """Why the configuration would refuse `answer` for `key` (the loader's own rules), or None.
    Only errors located at `key` count: the other values are checked when the file is written."""
    from pydantic import ValidationError

    from mlflow_aca.config import Settings, coerce_text
    from mlflow_aca.redaction import shorten

    values = {**_PLACEHOLDERS, **{k: coerce_text(k, v) if isinstance(v, str) else v for k, v in chosen.items()},
              key: coerce_text(key, answer)}
    try:
        Settings.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            if tuple(error.get("loc") or ())[:1] == (key,):
                message = str(error.get("msg", "")).removeprefix("Value error, ")
                return f"{key} = {shorten(answer, 80)!r}: {message}"
    return None
