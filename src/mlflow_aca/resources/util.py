"""Small helpers for reading REST-shaped resources."""

from __future__ import annotations

from typing import Any


def dig(state: dict[str, Any] | None, path: str) -> Any:
    """The value at a dotted path, or None when any part is missing."""
    value: Any = state
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
