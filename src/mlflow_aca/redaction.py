"""A process-wide list of secret values, and the filter every piece of output passes through.

Secrets are kept out of output by construction (they only travel in secret fields); this is
the safety net for text the tool does not compose itself, such as an SDK's exception message
that quotes a request body, or a URL someone wrote with `user:password@` in it.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()

# `scheme://user:password@`: the password part of a URL's userinfo (RFC 3986 §3.2.1, which
# deprecates it: "applications should not render as clear text any data after the first colon").
# A userinfo without a colon is kept: here it is a blob container (`wasbs://container@host`) or
# the identity's client id in the SQL URI, neither of them secret.
# Every repetition is bounded (a scheme is short, a userinfo at most a few KB) so that the
# filter stays linear on long text with no URL in it, such as a base64 blob.
_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]{0,31}://"
_URL_PASSWORD = re.compile(rf"(?P<head>{_SCHEME}[^\s/?#@:'\"]{{0,4096}}):[^\s/?#@'\"]{{0,4096}}@")
# Any userinfo at all, for values the tool echoes back from configuration: there a bare
# `https://TOKEN@host` (the form pip and git accept for tokens) is a credential too.
_URL_USERINFO = re.compile(rf"(?P<head>{_SCHEME})[^\s/?#@'\"]{{1,4096}}@")
# ... and `user:secret@host/...` written without a scheme (as in an image reference, where `@`
# may only introduce a digest such as `@sha256:...`, whose left side has no colon).
_BARE_USERINFO = re.compile(
    r"(?<![\w.+/:-])[^\s/?#@:'\"]{1,256}:[^\s/?#@'\"]{1,4096}"
    r"@(?![A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32})")
# An authority cut off by shortening (`https://user:sec…`): nothing after `://` is shown.
_CUT_AUTHORITY = re.compile(r"(://)[^\s/?#'\"]*$")


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
    return mask_url_passwords(text)


def mask_url_passwords(text: str) -> str:
    """`https://user:secret@host` → `https://user:***@host`."""
    return _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)


def mask_url_credentials(text: str) -> str:
    """Every URL userinfo masked: `https://user:secret@host` and `https://token@host` →
    `https://***@host`. For configuration values echoed in messages."""
    return _BARE_USERINFO.sub(f"{MASK}@", _URL_USERINFO.sub(rf"\g<head>{MASK}@", text))


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with credentials masked, in time bounded by `limit`
    rather than by the text (which may be megabytes)."""
    window = mask_url_credentials(text[: limit + 8192])
    if len(text) <= limit and len(window) <= limit:
        return window
    return _CUT_AUTHORITY.sub(rf"\g<1>{MASK}", window[:limit])
