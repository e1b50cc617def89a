"""Tags of any resource through Microsoft.Resources/tags at its scope (`{id}/providers/
Microsoft.Resources/tags/default`): one tag can be merged or deleted without a PUT of the whole
resource, which would need its full body and would replace all of its tags.

No conditional write: the Tags operations take no If-Match (azure-mgmt-resource's generated
`build_tags_update_at_scope_request`, from the Microsoft.Resources 2025-04-01 spec, sends no such
header, and the TagsResource model has no etag). The last PATCH wins (lease.py copes with that).
"""

from __future__ import annotations

from mlflow_aca.azure import rest
from mlflow_aca.azure.session import AzureSession


def patch(session: AzureSession, resource_id: str, operation: str, tags: dict[str, str]) -> None:
    """operation "Merge" adds or replaces the given tags and keeps the others; "Delete" removes
    the given names or name/value pairs (Microsoft.Resources Tags_UpdateAtScope, TagPatchMode:
    "The 'delete' option allows selectively deleting tags based on given names or name/value
    pairs"; whether a pair whose value differs is kept is not stated, so nothing here relies on it)."""
    client = session.client("resources")
    body = {"operation": operation, "properties": {"tags": tags}}
    # The SDK's URL template is "/{scope}/providers/...", the scope inserted unquoted.
    scope = resource_id.lstrip("/")
    rest.run(f"{operation.lower()} tags on {resource_id.rsplit('/', 1)[-1]}",
             lambda: client.tags.begin_update_at_scope(scope, body))
