"""Microsoft Graph's error shape and the errors the stand-in answers with.

Graph errors are `{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}` (learn.microsoft.com/graph/errors, "Error resource type").
"""

from __future__ import annotations

import time
import uuid

from ..arm import Request, Response

# Graph's answer to a write the caller may not make (learn.microsoft.com/graph/errors lists
# Authorization_RequestDenied; the message as Graph sends it: microsoftgraph/microsoft-graph-docs
# #10290, #20368).
DENIED = "Insufficient privileges to complete the operation."


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, *, details: list | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details
        self.headers = headers or {}

    def response(self, req: Request) -> Response:
        request_id = str(uuid.uuid4())
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        error["innerError"] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "request-id": request_id,
                               "client-request-id": req.headers.get("client-request-id", request_id)}
        return Response(self.status, {"error": error}, {"request-id": request_id, **self.headers})


def not_found(key: str) -> GraphError:
    # Graph's 404 for a directory object (seen verbatim in scripts that retry on it, e.g. the
    # "does not exist or one of its queried reference-property objects are not present" match).
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{key}' does not exist or one of its queried reference-property objects "
                      "are not present.")


def denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", DENIED)


def bad_request(message: str, code: str = "Request_BadRequest", details: list | None = None) -> GraphError:
    return GraphError(400, code, message, details=details)


def read_only(name: str) -> GraphError:
    # The form of Graph's answer for a property that cannot be written
    # ("Property 'isSipEnabled' is read-only and cannot be set.", microsoftgraph/msgraph-sdk-dotnet#1992).
    return bad_request(f"Property '{name}' is read-only and cannot be set.")


def unknown_property(name: str, type_name: str) -> GraphError:
    # Microsoft.OData.Core's message for a property the type does not define; Graph answers it as
    # 400 BadRequest. Exact wording unverified against Graph itself.
    return GraphError(400, "BadRequest",
                      f"The property '{name}' does not exist on type 'microsoft.graph.{type_name}'. Make sure to "
                      "only use property names that are defined by the type or mark the type as open type.")
