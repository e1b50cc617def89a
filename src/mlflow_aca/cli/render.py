"""Human renderings of command results (stdout). JSON mode never reaches these."""

from __future__ import annotations

from typing import Any

_MARK = {"created": "+", "create": "+", "updated": "~", "update": "~", "deleted": "-",
         "ok": "=", "kept": "=", "ran": "*", "run": "*", "absent": " ", "skipped": "!", "failed": "x", "present": "="}


def outcome_table(out: Any, data: dict[str, Any], *, title: str) -> None:
    """One line per resource: what happened (or would happen) to it, and which fields."""
    out.print(f"[bold]{title}[/]")
    rows = data.get("resources", [])
    width = max((len(row["resource"]) for row in rows), default=0)
    for row in rows:
        outcome = row.get("outcome") or row.get("state") or ""
        detail = row.get("detail") or ""
        line = f"  {_MARK.get(outcome, '?')} {row['resource'].ljust(width)}  {outcome}"
        out.print(line + (f"  ({detail})" if detail else ""), markup=False, soft_wrap=True)
    if data.get("url"):
        out.print(f"\nMLflow: {data['url']}", markup=False)


def counts(data: dict[str, Any]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for row in data.get("resources", []):
        tally[row["outcome"]] = tally.get(row["outcome"], 0) + 1
    return tally
