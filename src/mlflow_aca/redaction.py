"""A process-wide list of secret values, and the filter every piece of output passes through.

Secrets are kept out of output by construction (they only travel in secret fields); this is
the safety net for text the tool does not compose itself, such as an SDK's exception message
that quotes a request body.
"""

from __future__ import annotations

import threading
from urllib.parse import quote

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask `value` (and its URL-encoded form) in everything printed from now on."""
    if not value or len(value) < 4:
        return
    with _lock:
        _secrets.add(value)
        _secrets.add(quote(value, safe=""))


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
