"""Human renderings of command results (stdout). JSON mode never reaches these."""

from __future__ import annotations

from typing import Any

_MARK = {"created": "+", "create": "+", "updated": "~", "update": "~", "deleted": "-",
         "ok": "=", "kept": "=", "ran": "*", "run": "*", "absent": " ", "skipped": "!", "failed": "x", "present": "=",
         "built": "+", "pushed": "+"}


def outcome_table(out: Any, data: dict[str, Any], *, title: str) -> None:
    """One line per resource: what happened (or would happen) to it, and which fields."""
    out.print(f"[bold]{title}[/]")
    rows = data.get("resources", [])
    width = max((len(row["resource"]) for row in rows), default=0)
    for row in rows:
        outcome = row.get("outcome") or row.get("state") or ""
        detail = _shorten(row)
        seconds = f"{row['seconds']:6.1f}s" if "seconds" in row else " " * 7
        line = f"  {_MARK.get(outcome, '?')} {row['resource'].ljust(width)}  {seconds}  {outcome}"
        out.print(line + (f"  ({detail})" if detail else ""), markup=False, soft_wrap=True)
    if data.get("url"):
        out.print(f"\nMLflow: {data['url']}", markup=False)


def _shorten(row: dict[str, Any]) -> str:
    """Changed fields by name, at most three (the JSON output has them all)."""
    changes = row.get("changes") or []
    if len(changes) > 3 and row.get("detail", "").startswith(changes[0]):
        rest = row["detail"][len(", ".join(changes)):].lstrip(", ")
        shown = ", ".join(changes[:3]) + f" and {len(changes) - 3} more"
        return f"{shown}, {rest}" if rest else shown
    return row.get("detail") or ""

