"""Moving between SDK models and REST-shaped dictionaries, and the small call patterns every
adapter uses (get-or-None, wait for a long-running operation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlflow_aca.azure.errors import is_not_found, translate_errors


def to_rest(model: Any) -> dict[str, Any]:
    """The JSON Azure sent, as a dict. Hybrid models (most mgmt packages) give it from
    `as_dict()`; msrest models (msi, authorization) from `serialize(keep_readonly=True)`."""
    if model is None:
        return {}
    if isinstance(model, dict):
        return model
    if hasattr(model, "serialize"):
        return model.serialize(keep_readonly=True)
    return model.as_dict()


def to_model(model_type: Any, body: dict[str, Any]) -> Any:
    """An SDK model from a REST-shaped dict."""
    if hasattr(model_type, "from_dict") and hasattr(model_type, "serialize"):
        return model_type.from_dict(body)
    return model_type(body)


def get_or_none(action: str, call: Callable[[], Any]) -> dict[str, Any] | None:
    """GET a resource; None when Azure says it does not exist."""
    with translate_errors(action):
        try:
            return to_rest(call())
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise


def run(action: str, call: Callable[[], Any]) -> dict[str, Any]:
    """A synchronous call, or a long-running one (`begin_*`) waited for until it ends."""
    with translate_errors(action):
        result = call()
        if hasattr(result, "result") and hasattr(result, "status"):
            result = result.result()
        return to_rest(result)


def delete(action: str, call: Callable[[], Any]) -> bool:
    """Delete and wait; False when it was already gone."""
    with translate_errors(action):
        try:
            poller = call()
            if hasattr(poller, "result"):
                poller.result()
            return True
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise


def name_available(action: str, call: Callable[[], Any], *, flag: str = "nameAvailable") -> tuple[bool, str]:
    """A checkNameAvailability answer as (available, why not)."""
    answer = run(action, call)
    return bool(answer.get(flag)), str(answer.get("message") or answer.get("reason") or "")
