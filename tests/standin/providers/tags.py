"""Microsoft.Resources/tags at a resource's scope: `{id}/providers/Microsoft.Resources/tags/default`.

As the Tags operations are specified (Microsoft.Resources 2025-04-01; azure-mgmt-resource's
generated tags request builders): GET answers `{id, name: "default", type, properties: {tags}}`;
PATCH takes `{operation, properties: {tags}}` where "Merge" adds or replaces the given tags,
"Replace" replaces them all and "Delete" removes the given names or name/value pairs (Microsoft
Learn, "Tags - Update At Scope"). No If-Match, no etag: the last write wins, and nothing here
serialises two clients' read-then-write for them. A scope that does not exist is 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arm import ARM_NAMESPACE, Request, Response, bad_request, not_found
from .core import VERSIONS

if TYPE_CHECKING:
    from ..app import StandinApp
    from ..store import Resource

_TAGS = "{scope}/providers/Microsoft.Resources/tags/default"


def _target(app: "StandinApp", req: Request) -> "Resource":
    scope = req.params["scope"].rstrip("/")
    parts = scope.strip("/").split("/")
    res = app.store.get(app.group_id(parts[3])) if len(parts) == 4 else app.store.get(scope)
    if res is None:
        raise not_found("ResourceNotFound", f"The Resource '{scope}' was not found.")
    return res


def _doc(res: "Resource") -> dict:
    return {"id": f"{res.id}/providers/Microsoft.Resources/tags/default", "name": "default",
            "type": "Microsoft.Resources/tags", "properties": {"tags": dict(res.doc.get("tags") or {})}}


def patch_tags(app: "StandinApp", req: Request) -> Response:
    res = _target(app, req)
    body = req.body if isinstance(req.body, dict) else {}
    operation = str(body.get("operation") or "")
    given = (body.get("properties") or {}).get("tags") or {}
    current = dict(res.doc.get("tags") or {})
    if operation.lower() == "merge":
        current.update(given)
    elif operation.lower() == "replace":
        current = dict(given)
    elif operation.lower() == "delete":
        # Name/value pairs: a tag goes only when its value matches (or no value was given).
        current = {k: v for k, v in current.items() if not (k in given and given[k] in ("", v))}
    else:
        raise bad_request("InvalidRequestContent", f"The operation '{operation}' is not valid: "
                          "expected Replace, Merge or Delete.")
    res.doc["tags"] = current
    return Response(200, _doc(res))


def register(app: "StandinApp") -> None:
    opts = dict(versions=VERSIONS, namespace=ARM_NAMESPACE, type_name="tags")
    app.router.add("GET", _TAGS, lambda r: Response(200, _doc(_target(app, r))), **opts)
    app.router.add("PATCH", _TAGS, lambda r: patch_tags(app, r), **opts)
