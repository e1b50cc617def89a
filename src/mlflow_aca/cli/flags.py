"""Configuration keys given as command-line flags: `--memory 4Gi`, `--allowed-ips=1.2.3.4/32`,
`--install-odbc-driver` / `--no-install-odbc-driver`. A repeated list flag accumulates.
"""

from __future__ import annotations

from typing import Any, get_origin

from mlflow_aca.errors import UsageError

# Short spellings people reach for, mapped to the keys they mean.
ALIASES = {"subscription": "subscription_id"}


def parse_config_flags(args: list[str]) -> dict[str, Any]:
    from mlflow_aca.config import Settings

    fields = Settings.model_fields
    values: dict[str, Any] = {}
    remaining = list(args)
    while remaining:
        token = remaining.pop(0)
        if not token.startswith("--") or token == "--":
            raise UsageError(f"Unexpected argument {token!r}.",
                             hint="Options take the form --key value; see --help.")
        flag, has_value, inline = token[2:].partition("=")
        key = ALIASES.get(flag.replace("-", "_"), flag.replace("-", "_"))
        negated = False
        if key not in fields and key.startswith("no_") and key[3:] in fields:
            key, negated = key[3:], True
        if key not in fields:
            from mlflow_aca.config.messages import did_you_mean, echo

            raise UsageError(
                f"No such option or configuration key: --{echo(flag)[1:-1]}"
                f"{did_you_mean(key, fields, spell=lambda k: '--' + k.replace('_', '-'))}.",
                hint="See --help for the command's options and `mlflow-aca config` for keys.",
            )
        is_bool = fields[key].annotation in (bool, bool | None)
        if is_bool and not has_value:
            values[key] = not negated
            continue
        if negated:
            raise UsageError(f"--no-{flag[3:]} takes no value.")
        if not has_value:
            if not remaining or remaining[0].startswith("--"):
                raise UsageError(f"Option --{flag} needs a value.")
            inline = remaining.pop(0)
        if get_origin(fields[key].annotation) in (list, dict) and key in values:
            values[key] = f"{values[key]},{inline}"
        else:
            values[key] = inline
    return values
