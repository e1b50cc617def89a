"""The container app running `mlflow server`: the spec (a pure function of the configuration and
the provisioned resources), and its convergence, which waits for a healthy revision."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mlflow_aca.azure import apps as azure_apps
from mlflow_aca.config import Settings
from mlflow_aca.errors import OperationError
from mlflow_aca.graph import StepResult
from mlflow_aca.redaction import register_secret
from mlflow_aca.resources import image_pull, sql
from mlflow_aca.resources.base import Context, Pending, Resource, adoption_note, provisioning_state
from mlflow_aca.resources.environment import CONSUMPTION_PROFILE
from mlflow_aca.resources.signin import AuthConfig
from mlflow_aca.resources.util import dig

PORT = 5000
CONTAINER_NAME = "mlflow"
BACKEND_SECRET = "backend-store-uri"
HEALTH_PATH = "/health"
# The MLflow version the app's image runs: the migration job compares it with the next one.
VERSION_TAG = "mlflow-aca-mlflow-version"
# The app's contained database user, as the migration job created it (written with the app, after
# the job ran): the job runs when it differs. With Entra authentication, the app identity's client
# id; with SQL authentication `password:<user>` (`app_user_tag`), written in the same PUT as the
# secret holding that user's password, so together they say the user has that password.
DB_USER_TAG = "mlflow-aca-db-user"
# With SQL authentication, where this run keeps the app user's password (ctx.private), and why the
# job must set it (no copy confirmed by the tag: a new password, set by the job's grant).
APP_PASSWORD_KEY = "sql_app_password"
APP_USER_PENDING = "sql_app_user_pending"
# Azure SQL closes idle connections after about 30 minutes: recycle pooled ones before that.
POOL_RECYCLE_SECONDS = 1200
# A serverless database pauses only after `autoPauseDelay` minutes with no session at all, and
# an idle pooled connection is a session (learn.microsoft.com/azure/azure-sql/database/
# serverless-tier-overview, "Auto-pausing"). With auto-pause on, the server therefore keeps no
# pool: each request opens its own connection (one TDS login, the token comes from the
# identity endpoint) and closes it. MLflow reads the pool class from this variable
# (mlflow/store/db/utils.py, create_sqlalchemy_engine).
NO_POOL = "NullPool"


@dataclass(frozen=True)
class AppInputs:
    """Everything the spec needs from resources that exist before the app."""

    image: str
    identity_id: str
    identity_client_id: str
    environment_id: str
    registry_server: str
    fqdn: str
    backend_store_uri: str
    artifacts_destination: str


def allowed_hosts(fqdn: str, app_name: str) -> list[str]:
    """Hosts MLflow's DNS-rebinding check must admit. The variable replaces MLflow's defaults,
    so loopback (in-container calls) and the app's in-environment names are listed too. Health
    probes call /health, which the check exempts."""
    hosts = [fqdn, f"{fqdn}:*", app_name, f"{app_name}:*", "localhost", "localhost:*",
             "127.0.0.1", "127.0.0.1:*"]
    domain = fqdn.split(".", 1)[1] if "." in fqdn else ""
    if domain:
        internal = f"{app_name}.internal.{domain}"
        hosts[2:2] = [internal, f"{internal}:*"]
    return hosts


def app_user(settings: Settings) -> str:
    """With SQL authentication, the app's contained database user: never the administrator login
    (which stays in the migration job), a plain identifier like it (config/model.py's rule)."""
    return f"{settings.sql_admin_login[:124]}_app"


def app_user_tag(settings: Settings) -> str:
    """DB_USER_TAG's value with SQL authentication: nothing secret in it."""
    return f"password:{app_user(settings)}"


def app_backend_uri(settings: Settings, cloud: Any, password: str) -> str:
    """The app's backend URI with SQL authentication: its own user, not the administrator."""
    from mlflow_aca import uris

    names = settings.names
    return uris.backend_store_uri(sql_host=cloud.sql_host(names.sql_server), database=names.sql_database,
                                  user=app_user(settings), password=password)


def ensure_app_password_known(ctx: Context, stored_uri: str | None, tags: dict[str, str] | None) -> str | None:
    """With SQL authentication, the app user's password for this run; returns why the migration
    job must (re)create the user, or None when it is in place.

    The copy the app's secret holds counts only when the secret's URI names the app's user and the
    tag says the job made that user (both written by one PUT, after the job ran). Otherwise (a new
    app, an app that signed in as the administrator, a lost copy) a new password is generated
    (nothing in a dry run) and the job's grant creates the user with it or sets it
    (`ALTER USER ... WITH PASSWORD`): no administrator reset is needed for it."""
    if ctx.settings.sql_auth != "password":
        return None
    if APP_PASSWORD_KEY in ctx.private or APP_USER_PENDING in ctx.private:
        return ctx.private.get(APP_USER_PENDING)
    user, password = credentials_from_uri(stored_uri)
    expected = app_user_tag(ctx.settings)
    tag = (tags or {}).get(DB_USER_TAG)
    if user == app_user(ctx.settings) and password and tag == expected:
        register_secret(password)
        ctx.private[APP_PASSWORD_KEY] = password
        return None
    name = app_user(ctx.settings)
    why = (f"database user {name} for the app gets a new password (no stored copy)" if tag == expected
           else f"database user {name} for the app not yet created")
    ctx.private[APP_USER_PENDING] = why
    if not ctx.dry_run:
        ctx.private[APP_PASSWORD_KEY] = sql.generate_password()
    return why


def backend_variable(settings: Settings, inputs: AppInputs) -> dict[str, Any]:
    """MLFLOW_BACKEND_STORE_URI: by reference to a secret when it carries a password."""
    if settings.sql_auth == "password":
        return {"name": "MLFLOW_BACKEND_STORE_URI", "secretRef": BACKEND_SECRET}
    return {"name": "MLFLOW_BACKEND_STORE_URI", "value": inputs.backend_store_uri}


def secrets(settings: Settings, inputs: AppInputs) -> list[dict[str, Any]]:
    if settings.sql_auth == "password":
        return [{"name": BACKEND_SECRET, "value": inputs.backend_store_uri}]
    return []


def pulled_with_identity(inputs: AppInputs) -> dict[str, Any]:
    """The identity block and registry credentials shared by the app and its jobs."""
    return {
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {inputs.identity_id: {}}},
        "registries": [{"server": inputs.registry_server, "identity": inputs.identity_id}],
    }


def server_environment(settings: Settings, inputs: AppInputs) -> list[dict[str, Any]]:
    """The server's configuration, all through MLflow's own environment variables."""
    app_name = settings.names.app
    return [
        backend_variable(settings, inputs),
        {"name": "MLFLOW_ARTIFACTS_DESTINATION", "value": inputs.artifacts_destination},
        {"name": "MLFLOW_SERVE_ARTIFACTS", "value": "true"},
        # DefaultAzureCredential in the container picks the user-assigned identity by this.
        {"name": "AZURE_CLIENT_ID", "value": inputs.identity_client_id},
        {"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": ",".join(allowed_hosts(inputs.fqdn, app_name))},
        {"name": "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", "value": f"https://{inputs.fqdn}"},
        {"name": "MLFLOW_WORKERS", "value": str(settings.server_workers)},
        {"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION",
         "value": "true" if settings.job_execution_enabled else "false"},
        *pool_environment(settings),
    ]


def pool_environment(settings: Settings) -> list[dict[str, Any]]:
    """How MLflow pools database connections: none when the database may pause (a pooled
    connection would keep it awake for ever), else a pool recycled before Azure drops idle ones."""
    if settings.sql_auto_pause_minutes != -1:
        return [{"name": "MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "value": NO_POOL}]
    return [{"name": "MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE", "value": str(POOL_RECYCLE_SECONDS)}]


def probes() -> list[dict[str, Any]]:
    check = {"path": HEALTH_PATH, "port": PORT, "scheme": "HTTP"}
    return [
        # Generous start-up: the first start creates MLflow's schema, and a paused serverless
        # database takes about a minute to resume.
        {"type": "Startup", "httpGet": check, "initialDelaySeconds": 10, "periodSeconds": 20,
         "timeoutSeconds": 5, "failureThreshold": 10},
        {"type": "Readiness", "httpGet": check, "periodSeconds": 10, "timeoutSeconds": 5,
         "failureThreshold": 3},
        {"type": "Liveness", "httpGet": check, "periodSeconds": 30, "timeoutSeconds": 5,
         "failureThreshold": 3},
    ]


def container_app_spec(settings: Settings, inputs: AppInputs, tags: dict[str, str]) -> dict[str, Any]:
    """The container app as Azure Resource Manager receives it."""
    shared = pulled_with_identity(inputs)
    tags = {**tags, VERSION_TAG: settings.mlflow_version}
    tags[DB_USER_TAG] = inputs.identity_client_id if settings.sql_auth == "entra" else app_user_tag(settings)
    return {
        "location": settings.location,
        "tags": tags,
        "identity": shared["identity"],
        "properties": {
            "managedEnvironmentId": inputs.environment_id,
            "workloadProfileName": CONSUMPTION_PROFILE,
            "configuration": {
                "activeRevisionsMode": "Single",
                "ingress": {
                    "external": True,
                    "targetPort": PORT,
                    "transport": "auto",
                    "allowInsecure": False,
                    "ipSecurityRestrictions": [
                        {"name": f"allow-{index}", "ipAddressRange": cidr, "action": "Allow"}
                        for index, cidr in enumerate(settings.allowed_ips, start=1)
                    ],
                },
                "registries": shared["registries"],
                "secrets": secrets(settings, inputs),
            },
            "template": {
                "containers": [{
                    "name": CONTAINER_NAME,
                    "image": inputs.image,
                    "command": ["mlflow"],
                    "args": ["server", "--host", "0.0.0.0", "--port", str(PORT)],
                    "env": server_environment(settings, inputs),
                    "resources": {"cpu": settings.cpu, "memory": settings.memory},
                    "probes": probes(),
                }],
                "scale": {"minReplicas": settings.min_replicas, "maxReplicas": settings.max_replicas},
            },
        },
    }


class ContainerApp(Resource):
    key = "app"
    kind = azure_apps.APP
    tagged = True
    deps = ("identity", "registry", "environment", "storage_account", "sql_database",
            "role_acr_pull", "role_blob_data", "blob_container", "image_check")

    def __init__(self, image: str | None = None, *, image_step: str | None = None) -> None:
        self.image = image
        self.image_step = image_step
        self.notes: list[str] = []   # what writing took beyond the usual (waits for image pulls)
        if image_step:
            self.deps = (*self.deps, image_step)

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.app)

    def image_reference(self, ctx: Context) -> str:
        if self.image:
            return self.image
        if self.image_step:
            return str(ctx.output(self.image_step, "reference"))
        from mlflow_aca.template import render_image

        rendered = render_image(ctx.settings)
        return f"{ctx.output('registry', 'login_server')}/{rendered.reference}"

    def predicted_fqdn(self, ctx: Context) -> str:
        # External ingress FQDN is <app>.<environment default domain>: known before the app exists,
        # so the allowed-hosts list is right in the first revision.
        domain = ctx.output("environment", "default_domain")
        return f"{ctx.names.app}.{domain}"

    def inputs(self, ctx: Context, fqdn: str) -> AppInputs:
        settings, cloud = ctx.settings, ctx.cloud
        client_id = str(ctx.output("identity", "client_id"))
        if settings.sql_auth == "password":
            # "<password>" only in a dry run: ensure_app_password_known ran otherwise.
            backend = app_backend_uri(settings, cloud, ctx.private.get(APP_PASSWORD_KEY) or "<password>")
        else:
            backend = settings.backend_store_uri(cloud, client_id=client_id)
        return AppInputs(
            image=self.image_reference(ctx),
            identity_id=str(ctx.output("identity", "id")),
            identity_client_id=str(ctx.output("identity", "client_id")),
            environment_id=str(ctx.output("environment", "id")),
            registry_server=str(ctx.output("registry", "login_server")),
            fqdn=fqdn,
            backend_store_uri=backend,
            artifacts_destination=settings.artifacts_destination(cloud),
        )

    def desired(self, ctx: Context, fqdn: str | None = None) -> dict[str, Any]:
        return container_app_spec(ctx.settings, self.inputs(ctx, fqdn or self.predicted_fqdn(ctx)), ctx.tags)

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": state.get("id"),
            "fqdn": dig(state, "properties.configuration.ingress.fqdn"),
            "latest_revision": dig(state, "properties.latestRevisionName"),
        }

    def read_with_secrets(self, ctx: Context) -> tuple[dict[str, Any] | None, dict[str, str]]:
        current = self.settled_read(ctx)
        if current is None or ctx.dry_run and isinstance(ctx.output("environment", "id"), Pending):
            return current, {}
        return current, azure_apps.app_secrets(ctx.session, *self.ids(ctx))

    def ensure(self, ctx: Context) -> StepResult:
        current, secrets = self.read_with_secrets(ctx)
        status = self.claim(ctx, current)
        # The job ran first and settled it; the administrator's password is not the app's business.
        ensure_app_password_known(ctx, secrets.get(BACKEND_SECRET), (current or {}).get("tags"))
        desired = self.claimed(ctx, self.desired(ctx), current, status)
        adoption = adoption_note(status, ctx.dry_run)
        if current is None:
            if ctx.dry_run:
                signin = _signin_changes(ctx, app_exists=False)
                return StepResult("create", _join(*signin))
            state = self.create(ctx, desired)
            outcome, fields = "created", []
        else:
            fields = self.changes(ctx, desired, with_secret_values(current, secrets))
            if provisioning_state(current) == "failed":
                fields.append("properties.provisioningState (Failed: reapplied)")
            stuck = failed_latest_revision(ctx, self, current)
            if stuck:
                desired = with_new_revision(desired)
                fields.append(f"template.revisionSuffix (revision {stuck} failed: a new revision)")
            if ctx.dry_run:
                fields += _signin_changes(ctx, app_exists=True)
                return StepResult("update" if fields else "ok", _join(", ".join(fields), adoption),
                                  {"changes": fields})
            state = self.update(ctx, desired, current) if fields else current
            outcome = "updated" if fields else "ok"
        # Sign-in goes on as soon as the app exists, before its revision is waited for: the
        # server is never left serving without it longer than Azure takes between two writes.
        signin = _signin_changes(ctx, app_exists=current is not None)
        if signin and outcome == "ok":
            outcome = "updated"
        if current is not None:
            fields += signin
        state = self._correct_fqdn(ctx, state)
        self._publish(ctx, state)
        revision = wait_for_healthy_revision(ctx, self)
        detail = _join(", ".join(fields), *(signin if current is None else []), *self.notes,
                       f"revision {revision} healthy", adoption)
        return StepResult(outcome, detail, {"changes": fields, "revision": revision})

    def create(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        return self._write(ctx, body)

    def update(self, ctx: Context, body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        return self._write(ctx, body)

    def _write(self, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the app and wait for its operation, at most timeout_minutes. Container Apps holds
        the operation while the new revision's image pull fails (a fresh AcrPull grant, not yet
        propagated: microsoft/azure-container-apps#646) and fails it after a while ("Operation
        expired"): while the grant is young enough to be still propagating, a new revision is
        asked for and waited for again, within the same deadline."""
        deadline = time.monotonic() + ctx.settings.timeout_minutes * 60
        started, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            operation = azure_apps.begin_write(ctx.session, self.kind, *self.ids(ctx), body=body)
            watch = PullWatch()
            try:
                state = self._await(ctx, operation, watch, deadline, app_image(body))
            except OperationError as error:
                failure = image_pull.pull_failure(error.message)
                age = image_pull.acr_pull_age(ctx) if failure == "denied" else None
                # Only an operation that expired retrying the pull is retried: one refused at once
                # has no rights to wait for (no registries entry, no role), and would fail again.
                expired = "operation expired" in error.message.lower()
                if failure == "denied" and expired and image_pull.still_propagating(age) \
                        and time.monotonic() < deadline - ctx.settings.poll_interval:
                    # Same template, new revision: the pull is tried again by a revision of its own.
                    body = with_new_revision(body)
                    continue
                waited = time.monotonic() - started
                plain = image_pull.pull_error(ctx, app_image(body), error.message, what="the app", age=age,
                                              waited=waited if attempts > 1 or watch.seen else None)
                if plain is None:
                    raise
                raise plain from error
            if watch.seen or attempts > 1:
                self.notes.append(pull_note(ctx, time.monotonic() - started, attempts, watch))
            return state

    def _await(self, ctx: Context, operation: Any, watch: PullWatch, deadline: float,
               image: str) -> dict[str, Any]:
        """The operation's result; between polls, what the new revision's replicas say about
        their image pull (for the progress note and the error at the deadline)."""
        slice_seconds = max(ctx.settings.poll_interval, 1.0)
        while not operation.wait(min(slice_seconds, max(deadline - time.monotonic(), 0.1))):
            watch.look(ctx, self)
            if time.monotonic() >= deadline:
                text = watch.last or ""
                raise image_pull.pull_error(ctx, image, text, what="the app",
                                            waited=ctx.settings.timeout_minutes * 60) or OperationError(
                    f"Azure did not finish updating the {self.label(ctx)} within "
                    f"{ctx.settings.timeout_minutes} minutes{f' ({text})' if text else ''}.",
                    code="AppOperationTimeout",
                    hint="Azure goes on with the operation: rerun `mlflow-aca deploy` later (it waits for "
                    "the operation first), or raise timeout_minutes.")
        return operation.result()

    def _correct_fqdn(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        actual = dig(state, "properties.configuration.ingress.fqdn")
        if not actual or actual == self.predicted_fqdn(ctx):
            return state
        # Azure chose another host name than predicted: the allowed hosts must follow it.
        return self.update(ctx, self.desired(ctx, fqdn=actual), state)


class PullWatch:
    """What the replicas of the app's latest revision say while its operation runs: the last
    image-pull refusal seen (Container Apps shows ImagePullBackOff and the registry's answer in
    a replica container's runningStateDetails while it retries)."""

    def __init__(self) -> None:
        self.seen = False
        self.last: str | None = None

    def look(self, ctx: Context, app: ContainerApp) -> None:
        state = app.read(ctx) or {}
        latest = dig(state, "properties.latestRevisionName")
        if not latest:
            return
        texts = [dig(azure_apps.revision(ctx.session, *app.ids(ctx), latest) or {},
                     "properties.provisioningError") or ""]
        for replica in azure_apps.replicas(ctx.session, *app.ids(ctx), latest):
            texts.append(str(dig(replica, "properties.runningStateDetails") or ""))
            texts += [str(c.get("runningStateDetails") or "") for c in dig(replica, "properties.containers") or []]
        refused = [text for text in texts if image_pull.pull_failure(text)]
        if refused:
            self.seen, self.last = True, refused[-1]


def pull_note(ctx: Context, waited: float, attempts: int, watch: PullWatch) -> str:
    age = image_pull.acr_pull_age(ctx)
    granted = f", AcrPull granted {image_pull.describe_age(age)}" if age is not None else ""
    tries = f" over {attempts} revisions" if attempts > 1 else ""
    return f"waited {int(waited)} s for the image pull{tries} (registry refused it while the grant propagated{granted})"


def app_image(body: dict[str, Any]) -> str:
    containers = dig(body, "properties.template.containers") or [{}]
    return str(containers[0].get("image") or "")


def _signin_changes(ctx: Context, *, app_exists: bool) -> list[str]:
    return [f"sign-in: {change}" for change in AuthConfig().converge(ctx, app_exists)]


def _join(*parts: str) -> str:
    return ", ".join(part for part in parts if part)


def with_secret_values(current: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """An app or job as Azure holds it, secret values included (GET omits them; listSecrets has them)."""
    configuration = dig(current, "properties.configuration") or {}
    secrets = [{**item, "value": values.get(item.get("name"), "")}
               for item in configuration.get("secrets") or []]
    return {**current, "properties": {**current.get("properties", {}),
                                      "configuration": {**configuration, "secrets": secrets}}}


def credentials_from_uri(uri: str | None) -> tuple[str | None, str | None]:
    """The (percent-decoded) user and password a backend URI carries."""
    if not uri:
        return None, None
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    return (unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None)


def failed_latest_revision(ctx: Context, app: ContainerApp, current: dict[str, Any]) -> str | None:
    """The app's latest revision when it failed, else None. A failed revision stays the latest
    until a PUT changes the template: re-sending an unchanged template (or re-applying a Failed
    app) starts no new revision, so the rerun would only find the same failure again."""
    latest = dig(current, "properties.latestRevisionName")
    if not latest:
        return None
    revision = azure_apps.revision(ctx.session, *app.ids(ctx), latest)
    props = (revision or {}).get("properties", {})
    return str(latest) if revision_failed(props) else None


def revision_failed(props: dict[str, Any]) -> bool:
    return str(props.get("provisioningState") or "").lower() == "failed" \
        or str(props.get("runningState") or "").lower() == "failed"


def with_new_revision(desired: dict[str, Any]) -> dict[str, Any]:
    """The app with a fresh `template.revisionSuffix`. The template "defines the desired state of an
    immutable revision. Any changes to this section will result in a new revision being created"
    (Microsoft.App REST spec, CommonDefinitions.json `Template`; learn.microsoft.com/azure/
    container-apps/revisions: "Revision-scope changes"), and the suffix is part of it, so the same
    image and settings run again as a new revision `<app>--<suffix>`. Chosen over the revision
    restart action (POST .../revisions/{name}/restart), which restarts the replicas of an existing
    revision but is documented for picking up secrets, not for re-provisioning a Failed one.

    The suffix is sent only with this PUT: desired states never carry it, so a following deploy
    (desired a subset of what Azure holds) sees no difference and writes nothing, and a later
    template change lets Azure name its revision (as `az containerapp update` does: it sends
    revisionSuffix null unless --revision-suffix is given). A suffix already used is refused
    (ContainerAppRevisionSuffixExists), hence random. Lower-case alphanumerics and single dashes,
    starting and ending alphanumeric (azure-cli containerapp _validators.py
    validate_revision_suffix)."""
    import secrets as random_source

    template = {**desired["properties"]["template"], "revisionSuffix": f"retry-{random_source.token_hex(4)}"}
    return {**desired, "properties": {**desired["properties"], "template": template}}


def wait_for_healthy_revision(ctx: Context, app: ContainerApp) -> str:
    """Poll until the app's latest revision is healthy; fail with Azure's reason if it cannot be."""
    settings = ctx.settings
    deadline = time.monotonic() + settings.timeout_minutes * 60
    resource_group, name = app.ids(ctx)
    last = "no revision yet"
    while True:
        state = app.read(ctx) or {}
        latest = dig(state, "properties.latestRevisionName")
        revision = azure_apps.revision(ctx.session, resource_group, name, latest) if latest else None
        if revision is not None:
            props = revision.get("properties", {})
            health, running = props.get("healthState"), props.get("runningState")
            provisioning = props.get("provisioningState")
            if provisioning == "Failed" or running == "Failed":
                plain = image_pull.pull_error(ctx, app.image_reference(ctx), str(props.get("provisioningError") or ""),
                                              what="the app")
                if plain is not None:
                    raise plain
                raise OperationError(
                    f"Revision {latest} failed: {props.get('provisioningError') or running}. "
                    f"{_replica_summary(ctx, resource_group, name, latest)}",
                    code="RevisionFailed",
                    hint="Check the image and the app's logs in the Log Analytics workspace "
                    "(ContainerAppConsoleLogs_CL); fix and rerun `mlflow-aca deploy`.",
                )
            if health == "Healthy" and provisioning in (None, "Provisioned"):
                return str(latest)
            last = f"revision {latest}: provisioning {provisioning}, running {running}, health {health}"
        if time.monotonic() >= deadline:
            detail = _replica_summary(ctx, resource_group, name, latest) if latest else ""
            plain = image_pull.pull_error(ctx, app.image_reference(ctx), detail, what="the app",
                                          waited=settings.timeout_minutes * 60)
            if plain is not None:
                raise plain
            raise OperationError(
                f"The app did not become healthy within {settings.timeout_minutes} minutes "
                f"({last}). {detail}".strip(),
                code="RevisionUnhealthy",
                hint="Check the app's logs in the Log Analytics workspace; raise timeout_minutes "
                "if start-up is just slow.",
            )
        time.sleep(settings.poll_interval)


def restart_count(replica: dict[str, Any]) -> int:
    """Restarts of all of a replica's containers."""
    return sum(int(c.get("restartCount") or 0) for c in dig(replica, "properties.containers") or [])


def _replica_summary(ctx: Context, resource_group: str, app: str, revision: str) -> str:
    listed = azure_apps.replicas(ctx.session, resource_group, app, revision)
    if not listed:
        return "No replicas are running."
    parts = []
    for replica in listed:
        props = replica.get("properties", {})
        containers = props.get("containers") or []
        details = "; ".join(str(c.get("runningStateDetails")) for c in containers if c.get("runningStateDetails"))
        parts.append(f"{replica.get('name')}: {props.get('runningState')}, {restart_count(replica)} restarts"
                     + (f" ({details})" if details else ""))
    return "Replicas: " + "; ".join(parts) + "."

