"""The configuration reference as a Markdown table, generated from the model's field
descriptions so the README cannot drift from the code (a test compares them)."""

from __future__ import annotations

import json

from mlflow_aca.config.load import ENV_PREFIX
from mlflow_aca.config.model import Settings


def markdown_table() -> str:
    rows = ["| key | default | environment | description |", "|---|---|---|---|"]
    for key, field in Settings.model_fields.items():
        if field.is_required():
            default = "*required*"
        elif field.default is None:
            default = "—"  # unset, or derived as the description says
        else:
            default = f"`{json.dumps(field.default)}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {default} | `{ENV_PREFIX}{key.upper()}` | {description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
