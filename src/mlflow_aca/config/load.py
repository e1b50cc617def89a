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

from mlflow_aca.config.messages import closest, did_you_mean, echo
from mlflow_aca.config.model import Settings
from mlflow_aca.errors import ConfigError
from mlflow_aca.redaction import mask_url_credentials, shorten

ENV_PREFIX = "MLFLOW_ACA_"
# Environment variables with this prefix that are not configuration keys.
ENV_RESERVED = {"MLFLOW_ACA_CONFIG"}
DEFAULT_CONFIG_PATH = Path("mlflow-aca.toml")
# A config file is a few kilobytes; reading stops past this, so `--config /dev/zero` (or a
# wrong, huge file) is refused instead of filling memory.
MAX_CONFIG_BYTES = 1024 * 1024
# Problems named in one message; pydantic reports one per list item, so a list of 10,000 wrong
# items would otherwise make a 10,000-part message.
MAX_PROBLEMS = 5
REFERENCE_HINT = ("The README's Configuration section lists every key; `mlflow-aca init` writes "
                  "them all into a new file, commented.")

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
    found = explicit or path.exists()
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
            meant = closest(key, FIELD_NAMES)
            raise ConfigError(
                f"Unknown configuration key {echo(key)} from environment variable "
                f"{echo(var)[1:-1]}{did_you_mean(key, FIELD_NAMES, spell=lambda k: ENV_PREFIX + k.upper())}",
                code="UnknownKey",
                hint=f"Rename it to {ENV_PREFIX}{meant.upper()}." if meant
                else f"Unset it, or rename it to the MLFLOW_ACA_<KEY> variable meant. {REFERENCE_HINT}",
            )
        merged[key], origin[key] = coerce_text(key, raw), var

    for key, value in (overrides or {}).items():
        merged[key] = coerce_text(key, value) if isinstance(value, str) else value
        origin[key] = field_flag(key)

    return validate_settings(merged, origin, path, file_found=found)


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        if required:
            raise ConfigError(
                f"Config file {path} does not exist.",
                code="ConfigMissing",
                hint="Create one with `mlflow-aca init`, or pass --config with the right path.",
            ) from None
        return {}
    except OSError as exc:
        raise unreadable(path, exc.strerror or str(exc)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise unreadable(path, f"it is larger than {MAX_CONFIG_BYTES // 1024} KiB, too large for a config file")
    try:
        # utf-8-sig drops the byte order mark Windows editors write (tomllib refuses it as an
        # "Invalid statement" at line 1, column 1; observed with Python 3.12's tomllib).
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise unreadable(path, f"byte {exc.start + 1} is not UTF-8 ({exc.reason})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError(
            f"Config file {path} is not valid TOML: {exc}.",
            code="ConfigMalformed",
            hint="Fix the syntax at that line and column; strings need quotes, e.g. "
            'location = "westeurope".',
        ) from None
    except RecursionError:  # tomllib parses nested arrays recursively
        raise ConfigError(f"Config file {path} is not valid TOML: arrays or tables are nested too deeply.",
                          code="ConfigMalformed", hint="No configuration key takes nested arrays.") from None


def unreadable(path: Path, reason: str) -> ConfigError:
    """The one error for a config file that cannot be read, from any command (exit 1)."""
    return ConfigError(f"Cannot read config file {path}: {reason}.", code="ConfigUnreadable",
                       hint="Check the path and its permissions; the file must be UTF-8 text.")


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
                    f"Value {echo(raw)} for {key!r} is not a list of key=value pairs.",
                    hint=f"Example: {key}=team=ml,cost-center=42",
                )
            pairs[tag.strip()] = value.strip()
        return pairs
    if _accepts_none(annotation) and raw == "":
        return None
    return raw


def validate_settings(values: dict[str, Any], origin: Mapping[str, str], path: Path, *,
                      file_found: bool = True) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        types = {e.get("type") for e in exc.errors()}
        if not file_found and types == {"missing"}:
            raise _no_config_file(exc, path) from None
        # Credentials are masked in the whole text: a validator may quote the value too.
        message = mask_url_credentials(_describe_validation_error(exc, values, origin, path))
        raise ConfigError(message, code="UnknownKey" if types == {"extra_forbidden"} else None,
                          hint=_hint_for(exc, values)) from None


def _no_config_file(exc: ValidationError, path: Path) -> ConfigError:
    missing = ", ".join(str((e.get("loc") or ("?",))[0]) for e in exc.errors())
    return ConfigError(
        f"No config file: looked for {path.absolute()}, which does not exist, and {missing} "
        "are not set by MLFLOW_ACA_* variables or flags either.",
        code="ConfigMissing",
        hint="Create it with `mlflow-aca init` (prompts for what it needs), or pass --config "
        "with the file's path.",
    )


def _describe_validation_error(exc: ValidationError, values: Mapping[str, Any],
                               origin: Mapping[str, str], path: Path) -> str:
    problems = []
    errors = exc.errors()
    for error in errors[:MAX_PROBLEMS]:
        loc = error.get("loc") or ()
        key = str(loc[0]) if loc else ""
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            problems.append(f"unknown key {echo(key)} (from {origin.get(key, path)})"
                            + did_you_mean(key, FIELD_NAMES))
        elif error.get("type") == "missing":
            problems.append(f"missing required key {key!r}")
        elif len(loc) > 1:  # one item of a list or table: name it, echo only that item
            where = "".join(f"[{echo(part)}]" for part in loc[1:])
            source = origin.get(key, "default")
            problems.append(f"{key}{where} = {echo(error.get('input'))} (from {source}): {_short(message)}")
        elif key:
            source = origin.get(key, "default")
            problems.append(f"{key} = {echo(values.get(key))} (from {source}): {_short(message)}")
        else:
            problems.append(_short(message))
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_PROBLEMS} more")
    text = "Invalid configuration: " + "; ".join(problems)
    return text if text.endswith("?") else text + "."


def _short(message: str) -> str:
    """A validator's message, which may quote the value, cut like an echoed value."""
    return shorten(message, 300) + ("…" if len(message) > 300 else "")


def _hint_for(exc: ValidationError, values: Mapping[str, Any]) -> str:
    types = {e.get("type") for e in exc.errors()}
    if "extra_forbidden" in types:
        unknown = [str(e["loc"][0]) for e in exc.errors() if e.get("type") == "extra_forbidden"]
        meant = closest(unknown[0], FIELD_NAMES) if len(unknown) == 1 else None
        if meant:
            return f"Rename {echo(unknown[0])} to {meant!r}."
        return f"Remove or rename the key. {REFERENCE_HINT}"
    if "missing" in types:
        return "Run `mlflow-aca init` to write a config file, or pass the key as a flag."
    return "Fix the value in mlflow-aca.toml, the MLFLOW_ACA_* variable or the flag named."


def _accepts_none(annotation: Any) -> bool:
    return type(None) in get_args(annotation)
