"""Pieces of configuration error messages: a value echoed short and without credentials, and
the key a typo most likely meant. Kept free of pydantic so the flag parser can use them too."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from mlflow_aca.redaction import shorten

# An echoed value is a reminder of which value is meant, not a copy of it: a 5 MB value must
# not make a 5 MB message (issue 13).
ECHO_LIMIT = 60
# difflib's ratio above which a key counts as "meant": 0.75 catches one or two swapped, missing
# or extra letters in keys of 6+ characters (memroy → memory, min_replica → min_replicas)
# without offering unrelated keys for short words.
SUGGESTION_CUTOFF = 0.75


def echo(value: Any) -> str:
    """`repr(value)`, credentials in URLs masked, cut to ECHO_LIMIT characters with the
    full size said."""
    text = repr(value)
    if len(text) <= ECHO_LIMIT:
        return shorten(text, ECHO_LIMIT)
    if isinstance(value, str):
        size = f"{len(value)} characters"
    elif isinstance(value, (list, dict, tuple)):
        size = f"{len(value)} items"
    else:
        size = f"{len(text)} characters"
    return f"{shorten(text, ECHO_LIMIT)}… ({size})"


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The valid key `word` most likely meant, if one is close enough."""
    if len(word) > 100:  # no key is that long; difflib is quadratic in the length
        return None
    matches = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=SUGGESTION_CUTOFF)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str], *,
                 spell: Callable[[str], str] = lambda key: f"'{key}'") -> str:
    """`: did you mean 'memory'?`, or nothing when no key is close."""
    match = closest(word, choices)
    return f": did you mean {spell(match)}?" if match else ""
