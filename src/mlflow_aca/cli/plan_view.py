"""What `plan` shows: each resource's action with its changed values (old -> new, secrets
masked where the change was found: resources/base.py `Change`), and a summary line in the
manner of terraform's `Plan: N to add, M to change, K to destroy`."""

from __future__ import annotations

from typing import Any

from mlflow_aca.cli.render import _MARK as MARKS
from mlflow_aca.cli.render import _shorten as shorten_detail

# Rows that are checks, not resources: they are shown but not counted.
CHECKS = ("image_check", "location")
APP_IMAGE = "properties.template.containers[0].image"


def plan_data(outcome: Any) -> dict[str, Any]:
    """The outcome's rows with each change's values (`diff`), and the counts (`summary`)."""
    from mlflow_aca.resources.base import value_changes

    data = outcome.as_data()
    counts = {"create": 0, "change": 0, "unchanged": 0, "run": 0}
    for row in data["resources"]:
        row["diff"] = value_changes(row["changes"])
        result = outcome.results.get(row["key"])
        if result is not None and result.data.get("runs"):
            counts["run"] += 1
        if row["key"] in CHECKS:
            continue
        bucket = {"create": "create", "update": "change", "ok": "unchanged", "run": "unchanged"}.get(row["outcome"])
        if bucket:
            counts[bucket] += 1
    data["summary"] = counts
    return data


def image_notices(settings: Any, *, image_given: bool) -> list[str]:
    """What the template's image does not pin (supply_chain.py); nothing when the plan is for
    an image given with --image, which the template does not build."""
    from mlflow_aca.supply_chain import notices

    return [] if image_given else notices(settings)


def summary_line(counts: dict[str, int]) -> str:
    line = f"Plan: {counts['create']} to create, {counts['change']} to change, {counts['unchanged']} unchanged."
    if counts.get("run"):
        line += " The database migration runs before the app is written."
    return line


def show_plan(out: Any, data: dict[str, Any], *, image_given: bool) -> None:
    """One line per resource (mark, resource, read time, action, detail), each change's values
    under its resource, then the summary line."""
    rows = data.get("resources", [])
    width = max((len(row["resource"]) for row in rows), default=0)
    out.print("[bold]Plan[/] (read-only; [bold]read[/]: how long reading the resource's current state took)")
    out.print(f"    {'resource'.ljust(width)}  {'read':>7}  action", markup=False)
    for row in rows:
        outcome = row["outcome"]
        detail = shorten_detail(row)
        line = f"  {MARKS.get(outcome, '?')} {row['resource'].ljust(width)}  {row['seconds']:6.1f}s  {outcome}"
        out.print(line + (f"  ({detail})" if detail else ""), markup=False, soft_wrap=True)
        for change in row.get("diff", []):
            out.print(f"      {change['path']}: {change['old']} -> {change['new']}", markup=False, soft_wrap=True)
    out.print("\n" + summary_line(data["summary"]), markup=False)
    for notice in data.get("notices", []):
        out.print(f"Notice: {notice}", markup=False, soft_wrap=True)
    app = next((row for row in rows if row["key"] == "app"), None)
    image = next((c for c in (app or {}).get("diff", []) if c["path"] == APP_IMAGE), None)
    if image and not image_given:
        # After `deploy --image X`, a plan without --image is a plan for `deploy` without it,
        # which goes back to the template's image: real drift, but say where it comes from.
        running, template = (image[side].strip('"') for side in ("old", "new"))
        out.print(f"The app runs {running}; this plans `deploy` without --image (the template's image "
                  f"{template}). Pass the same --image to plan a deploy of that image.",
                  markup=False, soft_wrap=True)
