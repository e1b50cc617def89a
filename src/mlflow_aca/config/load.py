"""Loading the configuration: `mlflow-aca.toml`, then `MLFLOW_ACA_*` environment variables, then
command-line flags (flags win), validated once into `Settings`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import ValidationError

from mlflow_aca.config.model import Settings
from mlflow_aca.errors import ConfigError

ENV_PREFIX = "MLFLOW_ACA_"
# Environment variables with this prefix that are not configuration keys.
ENV_RESERVED = {"MLFLOW_ACA_CONFIG"}
DEFAULT_CONFIG_PATH = Path("mlflow-aca.toml")

FIELD_NAMES: tuple[str, ...] = tuple(Settings.model_fields)


def field_flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def load_settings(
    path: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge file < environment < flags and validate once.

    `path` None means the default `./mlflow-aca.toml`, which may be absent (automation can
    configure everything through the environment); an explicitly named file must exist.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("MLFLOW_ACA_CONFIG"))
    path = path or Path(environ.get("MLFLOW_ACA_CONFIG") or DEFAULT_CONFIG_PATH)

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    file_values = read_config_file(path, required=explicit)
    for key, value in file_values.items():
        merged[key], origin[key] = value, f"{path}"

    if "subscription_id" not in merged and environ.get("AZURE_SUBSCRIPTION_ID"):
        merged["subscription_id"] = environ["AZURE_SUBSCRIPTION_ID"]
        origin["subscription_id"] = "AZURE_SUBSCRIPTION_ID"

    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var in ENV_RESERVED:
            continue
        key = var[len(ENV_PREFIX):].lower()
        if key not in Settings.model_fields:
            raise ConfigError(
                f"Unknown configuration key {key!r} from environment variable {var}.",
                code="unknown_key",
                hint=f"Valid keys: {', '.join(FIELD_NAMES)}.",
            )
        merged[key], origin[key] = coerce_text(key, raw), var

    for key, value in (overrides or {}).items():
        merged[key] = coerce_text(key, value) if isinstance(value, str) else value
        origin[key] = field_flag(key)

    return validate_settings(merged, origin, path)


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(
                f"Config file {path} does not exist.",
                code="config_missing",
                hint="Create one with `mlflow-aca init`, or pass --config with the right path.",
            ) from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot read config file {path}: {exc.strerror if isinstance(exc, OSError) else exc}.",
            code="config_unreadable",
            hint="Check the path and its permissions; the file must be UTF-8 text.",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError(
            f"Config file {path} is not valid TOML: {exc}.",
            code="config_malformed",
            hint="Fix the syntax at that line and column; strings need quotes, e.g. "
            'location = "westeurope".',
        ) from None


def coerce_text(key: str, raw: str) -> Any:
    """Turn a string from the environment or a flag into the field's shape.

    Scalars are left to pydantic's coercion; lists are comma-separated and tables are
    comma-separated key=value pairs, since neither exists in an environment variable.
    """
    if key not in Settings.model_fields:
        return raw  # validation reports the unknown key, naming it
    annotation = Settings.model_fields[key].annotation
    shape = get_origin(annotation)
    if shape is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if shape is dict:
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            tag, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(
                    f"Value {raw!r} for {key!r} is not a list of key=value pairs.",
                    hint=f"Example: {key}=team=ml,cost-center=42",
                )
            pairs[tag.strip()] = value.strip()
        return pairs
    if _accepts_none(annotation) and raw == "":
        return None
    return raw


def validate_settings(values: dict[str, Any], origin: Mapping[str, str], path: Path) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, values, origin, path),
                          hint=_hint_for(exc)) from None


def _describe_validation_error(exc: ValidationError, values: Mapping[str, Any],
                               origin: Mapping[str, str], path: Path) -> str:
    problems = []
    for error in exc.errors():
        loc = error.get("loc") or ()
        key = str(loc[0]) if loc else ""
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            problems.append(f"unknown key {key!r} (from {origin.get(key, path)})")
        elif error.get("type") == "missing":
            problems.append(f"missing required key {key!r}")
        elif key:
            source = origin.get(key, "default")
            problems.append(f"{key} = {values.get(key)!r} (from {source}): {message}")
        else:
            problems.append(message)
    return "Invalid configuration: " + "; ".join(problems) + "."


def _hint_for(exc: ValidationError) -> str:
    types = {e.get("type") for e in exc.errors()}
    if "extra_forbidden" in types:
        return f"Valid keys: {', '.join(FIELD_NAMES)}."
    if "missing" in types:
        return "Run `mlflow-aca init` to write a config file, or pass the key as a flag."
    return "Fix the value in mlflow-aca.toml, the MLFLOW_ACA_* variable or the flag named."


def _accepts_none(annotation: Any) -> bool:
    return type(None) in get_args(annotation)
