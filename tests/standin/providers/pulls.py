"""Image pulls as Container Apps makes them, for a new revision (containerapps.py) and a job
execution (jobs.py).

Observed in Azure (issue threads; the stand-in reproduces the texts):
- tag absent: the app PUT's operation fails `ContainerAppOperationError`, "Failed to provision
  revision for container app '<app>'. Error details: The following field(s) are either invalid or
  missing. Field 'template.containers.<c>.image' is invalid with details: 'Invalid value: "<image>":
  GET https:: MANIFEST_UNKNOWN: manifest tagged by "<tag>" is not found; map[Tag:<tag>]';.."
  (Azure-Samples/call-center-voice-agent-accelerator#3, Azure-Samples/app-templates-microservices-integration#13);
- no pull rights: the same shape with "GET https:: UNAUTHORIZED: authentication required, visit
  https://aka.ms/acr/authorization for more information." (microsoft/azure-container-apps#816, #836);
- an AcrPull assignment that has not propagated yet: the revision keeps retrying (replica in
  ImagePullBackOff, system log "Persistent Image Pull Errors for image ..." #816) and the operation
  ends after ~8-15 minutes with "Failed to provision revision for container app '<app>'. Error
  details: Operation expired." (#646, Azure/reddog-containerapps#12, Azure/terraform-azure-container-apps#53),
  or succeeds if the assignment propagates first.

Only registries the stand-in serves are checked: a registry resource's login server (the front of
an attached real registry, where the tag is looked up with a HEAD signed by the front; or
`<name>.azurecr.io` with the catalog) and catalog hosts (add_registry_image). Images on any other
host (mcr.microsoft.com, docker.io, ...) are pulled without checks: the stand-in cannot see those
registries, and refusing them would fail every app that uses a public base image.

Unverified, the stricter plausible reading taken: a missing repository reads like a missing tag;
a managed identity is honoured only for ACR; a username/password for a foreign private registry is
accepted unchecked (the stand-in holds no credentials for it) while for ACR only the admin user of
an admin-enabled registry is; the field path of an init container is 'template.initContainers.<c>.image';
a synchronous PATCH that creates a revision is refused at once (400) instead of held.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import registry_catalog, registry_tokens

if TYPE_CHECKING:
    from ..app import StandinApp
    from ..resources import PutContext

OPERATION_ERROR = "ContainerAppOperationError"
_ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json",
                     "application/vnd.docker.distribution.manifest.v2+json"])


@dataclass
class Pull:
    outcome: str                # "ok", "missing", "unauthorized", "unavailable" or "waiting" (rights propagating)
    image: str = ""
    field: str = ""             # template.containers.<name>.image
    detail: str = ""            # what the registry answered: "GET https:: MANIFEST_UNKNOWN: ..."
    ready_at: float = 0.0       # waiting: when the rights reach the data plane

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def check(app: "StandinApp", template: dict, config: dict, identity: dict | None, now: float) -> Pull:
    """The first container whose pull fails for good, else the one waiting longest, else ok."""
    waiting: Pull | None = None
    for key in ("initContainers", "containers"):
        for container in template.get(key) or []:
            pull = _pull(app, str(container.get("image") or ""), config.get("registries") or [], identity, now)
            pull.field = f"template.{key}.{container.get('name')}.image"
            if pull.outcome == "waiting":
                waiting = pull if waiting is None or pull.ready_at > waiting.ready_at else waiting
            elif not pull.ok:
                return pull
    return waiting or Pull("ok")


def revision_failure(app_name: str, pull: Pull) -> tuple[str, str]:
    return (OPERATION_ERROR, f"Failed to provision revision for container app '{app_name}'. Error details: The "
                             f"following field(s) are either invalid or missing. Field '{pull.field}' is invalid "
                             f"with details: 'Invalid value: \"{pull.image}\": {pull.detail}';..")


def expired_failure(app_name: str, pull: Pull) -> tuple[str, str]:
    # Azure's message ends at "Operation expired."; the pull error is what its system logs say
    # (there are none here), appended so the reason is visible.
    return (OPERATION_ERROR, f"Failed to provision revision for container app '{app_name}'. Error details: "
                             f"Operation expired. {backoff_reason(pull)}")


def backoff_reason(pull: Pull) -> str:
    return f'Persistent Image Pull Errors for image "{pull.image}": {pull.detail}'


# -- revisions ----------------------------------------------------------------------------------------
def watch_revision(ctx: "PutContext", revision: str, template: dict, config: dict, identity: dict | None) -> None:
    """Make the PUT's operation pull the new revision's images when it would complete: fail it,
    hold it while rights propagate (until the pull timeout), or let it succeed."""
    import time

    app, rev_id = ctx.app, f"{ctx.id}/revisions/{revision}"
    if ctx.patch:   # answered synchronously by the stand-in: nothing to hold
        pull = check(app, template, config, identity, time.time())
        if not pull.ok:
            ctx.fail(*revision_failure(ctx.name, pull))
        return

    def hold(op, now: float) -> bool:
        pull = check(app, template, config, identity, now)
        if pull.ok:
            app.store.pull_waits.pop(rev_id.lower(), None)
            return False
        if pull.outcome == "waiting":
            deadline = op.started + float(app.store.pull_timeout)
            if now < deadline:
                op.done_at = min(pull.ready_at, deadline)
                _back_off(app, rev_id, pull)
                return True
            failure = expired_failure(ctx.name, pull)
        else:
            failure = revision_failure(ctx.name, pull)
        op.failure = ctx.failure = failure
        return False

    def attach() -> None:
        res = app.store.get(ctx.id)
        if res is not None and res.operation is not None:
            res.operation.hold = hold

    ctx.on_stored.append(attach)


def _back_off(app: "StandinApp", rev_id: str, pull: Pull) -> None:
    """The revision's replica waits in ImagePullBackOff (containerapps._sync_replicas shows it)."""
    from .containerapps import _sync_replicas

    revision = app.store.get(rev_id)
    if revision is None or app.store.pull_waits.get(rev_id.lower()):
        return
    app.store.pull_waits[rev_id.lower()] = backoff_reason(pull)
    scale = revision.properties["template"].get("scale") or {}
    revision.properties["replicas"] = max(scale.get("minReplicas", 0), 1)
    _sync_replicas(app, revision)


# -- one image ----------------------------------------------------------------------------------------
def _pull(app: "StandinApp", image: str, registries: list, identity: dict | None, now: float) -> Pull:
    try:
        ref = registry_catalog.parse_reference(image)
    except ValueError:
        return Pull("ok")    # not a reference the stand-in can resolve: no check (the PUT's own validation)
    host = ref.host
    front = app.registry_front
    real = front is not None and bool(app.store.registry_backend) and host == front.login_server
    if not real and not registry_catalog.serves(app, host):
        return Pull("ok")    # a registry the stand-in cannot see (mcr.microsoft.com, docker.io...): pulled unchecked
    acr = registry_catalog.acr_registry(app, host)
    refused = Pull("unauthorized", image, detail="GET https:: UNAUTHORIZED: " + (
        registry_catalog.ACR_UNAUTHORIZED if acr is not None else registry_catalog.UNAUTHORIZED))
    if not registry_catalog.anonymous(app, host, ref.repository):
        entry = next((r for r in registries if str(r.get("server", "")).lower() == host), None)
        if entry is None:
            return refused
        if entry.get("identity"):
            principal = _principal(identity, str(entry["identity"]))
            since = registry_tokens.effective_from(app, principal, host).get("pull") if acr and principal else None
            if since is None:
                return refused
            if since > now:
                return Pull("waiting", image, detail=refused.detail, ready_at=since)
        elif acr is not None and not (acr.properties.get("adminUserEnabled")
                                      and str(entry.get("username", "")).lower() == acr.doc["name"].lower()):
            return refused
    found = _exists_in_real_registry(app, ref) if real else registry_catalog.lookup(app, ref) is not None
    if found is None:
        return Pull("unavailable", image, detail=f"GET https:: UNAVAILABLE: the registry at {host} did not answer.")
    if not found:
        what = (f'manifest tagged by "{ref.tag}" is not found; map[Tag:{ref.tag}]' if not ref.digest
                else f"manifest {ref.digest} is not found; map[Digest:{ref.digest}]")
        return Pull("missing", image, detail=f"GET https:: MANIFEST_UNKNOWN: {what}")
    return Pull("ok", image)


def _principal(identity: dict | None, which: str) -> str | None:
    """The principal id of the app's identity a registry entry names ("system" or a resource id)."""
    identity = identity or {}
    if which.lower() == "system":
        return identity.get("principalId")
    for rid, info in (identity.get("userAssignedIdentities") or {}).items():
        if rid.lower() == which.lower():
            return (info or {}).get("principalId")
    return None


def _exists_in_real_registry(app: "StandinApp", ref: registry_catalog.Reference) -> bool | None:
    """HEAD the manifest in the registry behind the front, with a pull token the front signs
    (the registry trusts the front's signer). None when the registry does not answer."""
    front = app.registry_front
    token = front.sign_registry_token(subject="azure-standin-pull-check", ttl=60, access=[
        {"type": "repository", "name": ref.repository, "actions": ["pull"]}])
    backend_host, _, port = app.store.registry_backend.rpartition(":")
    conn = http.client.HTTPConnection(backend_host, int(port), timeout=5)
    try:
        conn.request("HEAD", f"/v2/{ref.repository}/manifests/{ref.digest or ref.tag}", headers={
            "Authorization": f"Bearer {token}", "Accept": _ACCEPT, "Host": front.login_server,
            "X-Forwarded-Proto": "https"})
        status = conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()
    if status == 200:
        return True
    if status == 404:
        return False
    return None
