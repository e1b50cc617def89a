"""Request log: what each client asked, with every secret value replaced before it is kept.

Redaction works on keys, for string values only: passwords, shared and account keys, tokens, client
secrets, and the `value` of every entry of a `secrets` list (Container Apps secrets). Names
that only point at a secret (`secretRef`, `passwordSecretRef`) are kept, so tests can check
that the product wires secrets by reference.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

REDACTED = "***"
_SECRET_KEY = re.compile(r"password|sharedkey|primarykey|secondarykey|accountkey|clientsecret|"
                         r"access_?token|refresh_?token|^token$|^key\d?$", re.IGNORECASE)
_KEEP = {"secretref", "passwordsecretref", "clientsecretsettingname"}


def _is_secret(key: str, in_secrets: bool) -> bool:
    lowered = key.lower()
    if lowered in _KEEP:
        return False
    if lowered == "value":
        return in_secrets
    return _SECRET_KEY.search(lowered) is not None


def redact(value: Any, *, in_secrets: bool = False) -> Any:
    # Secrets are strings. A boolean or a number under a key-like name is a setting to audit
    # (`allowSharedKeyAccess: false`, `sharedKeyExpiryDays`), and stays as it is.
    if isinstance(value, dict):
        return {key: REDACTED if _is_secret(key, in_secrets) and isinstance(item, str) and item
                else redact(item, in_secrets=key.lower() == "secrets")
                for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, in_secrets=in_secrets) for item in value]
    return value


def redact_body(body: Any) -> Any:
    if isinstance(body, str):
        # form posts (token exchanges) carry tokens as fields
        pairs = parse_qsl(body, keep_blank_values=True)
        if pairs and "=" in body:
            return urlencode([(k, REDACTED if _is_secret(k, False) else v) for k, v in pairs])
    return redact(body)


class RequestLog:
    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict] = []
        self._file = open(path, "a", encoding="utf-8") if path else None

    def record(self, *, method: str, path: str, api_version: str | None, body: Any, status: int,
               fault: str | None = None) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z",
                 "method": method, "path": path, "api_version": api_version,
                 "body": redact_body(body), "status": status}
        if fault:
            entry["fault"] = fault
        with self._lock:
            self._entries.append(entry)
            if self._file:
                self._file.write(json.dumps(entry) + "\n")
                self._file.flush()

    def entries(self) -> list[dict]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
