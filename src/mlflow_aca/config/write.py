"""Writing `mlflow-aca.toml`: every key, grouped and commented from the model's own field
descriptions; keys the user chose are set, the rest are shown commented out with their default.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow_aca.config.model import Settings

HEADER = """\
# mlflow-aca configuration. Precedence: this file < MLFLOW_ACA_<KEY> environment variables
# < command-line flags (--<key> value). Unknown keys are an error.
# Uncomment a line to override a default. Reference: `mlflow-aca config`, and the README.
"""


def render_config_file(chosen: dict[str, Any]) -> str:
    lines = [HEADER]
    group = None
    for key, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("group") != group:
            group = extra.get("group")
            lines.append(f"\n# ---- {group} " + "-" * max(3, 84 - len(str(group))))
        lines.append(f"# {field.description}")
        if key in chosen and chosen[key] is not None:
            lines.append(f"{key} = {toml_value(chosen[key])}")
        elif field.is_required():
            lines.append(f"# {key} = (required)")
        elif field.default is None:
            lines.append(f"# {key} =")
        else:
            lines.append(f"# {key} = {toml_value(field.default)}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """TOML for the value shapes the model uses. JSON string escapes are valid TOML escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}"
                          for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")
