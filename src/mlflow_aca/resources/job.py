"""Database migrations as a Container Apps job.

MLflow refuses to start on a schema that is out of date, and several replicas starting a new
version would race to upgrade it; `mlflow db upgrade` run once, to completion, before the new
revision exists is the safe path (notes/mlflow.md). The job runs the same image as the app,
whenever the app is new, its MLflow version changes (on an empty database the upgrade creates
the schema) or the app's database user is not known to exist (`DB_USER_TAG`).

With `sql_auth = "entra"` the job signs in to SQL as the migration identity, the server's Entra
administrator; it pulls the image with the app's identity (the one AcrPull grant, whose age
image_pull.acr_pull_age follows). Its `grant` init container creates the app identity's
contained database user with db_datareader and db_datawriter only (mlflow_aca_sql.grant_statement);
its main container upgrades the schema. Init containers run to completion, in order, before the
job's containers start (learn.microsoft.com/azure/container-apps/containers, "Init containers";
Microsoft.App JobTemplate.initContainers: "List of specialized containers that run before app
containers", azure-mgmt-appcontainers 5.1.0 models.JobTemplate), and an execution whose
container exits non-zero is Failed: the job succeeds only with both done.

With `sql_auth = "password"` the job alone holds the administrator login's URI (its secret
`backend-store-uri`), for the upgrade and for the same `grant` init container, which here creates
the app's contained user with a password (mlflow_aca_sql.password_user_statement) or gives it a
new one; that password reaches the grant only by secretRef (`app-db-password`). The app holds only
its own user's URI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mlflow_aca.azure import apps as azure_apps
from mlflow_aca.errors import OperationError
from mlflow_aca.graph import StepResult
from mlflow_aca.resources import image_pull
from mlflow_aca.resources.app import (
    APP_PASSWORD_KEY,
    APP_USER_PENDING,
    BACKEND_SECRET,
    DB_USER_TAG,
    VERSION_TAG,
    AppInputs,
    ContainerApp,
    app_user,
    backend_variable,
    credentials_from_uri,
    ensure_app_password_known,
    pulled_with_identity,
    with_secret_values,
)
from mlflow_aca.resources.base import Context, Resource, adoption_note, provisioning_state
from mlflow_aca.resources.environment import CONSUMPTION_PROFILE
from mlflow_aca.resources.roles import backoff
from mlflow_aca.resources.util import dig

CONTAINER_NAME = "mlflow-migrate"
GRANT_CONTAINER_NAME = "mlflow-grant"
# The image's plugin module (templates/mlflow_aca_sql.py) run as a program; it reads the URI and
# the app identity's name and client id from the environment (nothing in its arguments).
GRANT_COMMAND = ["python", "-m", "mlflow_aca_sql"]
GRANT_ARGS = ["grant"]
# With SQL authentication, the job's secret holding the app user's password, for the grant.
APP_PASSWORD_SECRET = "app-db-password"
# `mlflow db upgrade URL` takes the URI only as an argument (mlflow/db.py: click.argument, no
# environment variable). Expanded by a shell, a password-bearing URI would sit in the upgrade
# process's arguments, readable by anything that lists processes in the container. So the same
# click command runs inside Python, the URI read from the environment by the process itself:
# neither the job's spec nor any process's command line carries it.
#
# After the upgrade the same process opens MLflow's tracking store once, with the server's default
# artifact root (`mlflow server --serve-artifacts` without --default-artifact-root uses
# mlflow-artifacts:/, mlflow/utils/server_cli_utils.py resolve_default_artifact_root): on a new
# database that creates MLflow's Default experiment (SqlAlchemyStore._initialize_store_state),
# which on SQL Server runs `SET IDENTITY_INSERT experiments ON` (_create_default_experiment).
# That needs ownership of the table or ALTER on it (learn.microsoft.com/sql/t-sql/statements/
# set-identity-insert-transact-sql, "Permissions"), which the app's data-only user lacks: the
# administrator does it here. On a current schema with the experiment present, the store opens
# without writing (mlflow/store/tracking/sqlalchemy_store.py __init__: _initialize_tables only
# when a table is missing, _verify_schema only reads).
UPGRADE_COMMAND = ["python", "-c"]
UPGRADE_ARGS = ["import os; from mlflow.db import upgrade; uri = os.environ['MLFLOW_BACKEND_STORE_URI']; "
                "upgrade.main(args=[uri], prog_name='mlflow db upgrade', standalone_mode=False); "
                "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore; "
                "SqlAlchemyStore(uri, 'mlflow-artifacts:/')"]
TIMEOUT_SECONDS = 1800
_FINISHED = {"succeeded", "failed", "stopped", "degraded"}
# JobExecutionRunningState (Microsoft.App): an execution in these states is still at work.
_ACTIVE = {"running", "processing"}
# Executions started again while a young AcrPull grant may be what made them fail.
PULL_RETRIES = 8


@dataclass(frozen=True)
class MigrationInputs:
    """What the job has besides the app's inputs: the migration identity and its backend URI
    (the administrator's: the migration identity with Entra authentication, else the
    administrator login with its password), and the app's database user: the app identity's
    name, or with SQL authentication `app_user` and its password."""

    identity_id: str
    client_id: str
    backend_store_uri: str
    app_identity_name: str
    app_password: str | None = None


def migration_job_spec(settings: Any, inputs: AppInputs, tags: dict[str, str],
                       migration: MigrationInputs) -> dict[str, Any]:
    shared = pulled_with_identity(inputs)
    entra = settings.sql_auth == "entra"
    identity = shared["identity"]
    env = [backend_variable(settings, inputs), {"name": "AZURE_CLIENT_ID", "value": inputs.identity_client_id}]
    template: dict[str, Any] = {}
    job_secrets: list[dict[str, Any]] = []
    if not entra:
        # The administrator's URI (backend_variable refers to it by secretRef) and the app
        # user's password, for the grant only.
        job_secrets = [{"name": BACKEND_SECRET, "value": migration.backend_store_uri},
                       {"name": APP_PASSWORD_SECRET, "value": migration.app_password or "<password>"}]
        template["initContainers"] = [_grant_container(inputs, [
            *env, {"name": "MLFLOW_ACA_APP_USER", "value": app_user(settings)},
            {"name": "MLFLOW_ACA_APP_PASSWORD", "secretRef": APP_PASSWORD_SECRET}])]
    else:
        # Both identities: the app's pulls the image (registries), the migration identity signs in.
        identity = {**identity, "userAssignedIdentities": {**identity["userAssignedIdentities"],
                                                           migration.identity_id: {}}}
        env = [{"name": "MLFLOW_BACKEND_STORE_URI", "value": migration.backend_store_uri},
               {"name": "AZURE_CLIENT_ID", "value": migration.client_id}]
        template["initContainers"] = [_grant_container(inputs, [
            *env, {"name": "MLFLOW_ACA_APP_USER", "value": migration.app_identity_name},
            {"name": "MLFLOW_ACA_APP_CLIENT_ID", "value": inputs.identity_client_id}])]
    return {
        "location": settings.location,
        "tags": tags,
        "identity": identity,
        "properties": {
            "environmentId": inputs.environment_id,
            "workloadProfileName": CONSUMPTION_PROFILE,
            "configuration": {
                "triggerType": "Manual",
                "replicaTimeout": TIMEOUT_SECONDS,
                # A failed upgrade needs a person, not a retry loop against the database.
                "replicaRetryLimit": 0,
                "manualTriggerConfig": {"parallelism": 1, "replicaCompletionCount": 1},
                "registries": shared["registries"],
                "secrets": job_secrets,
            },
            "template": {
                **template,
                "containers": [{
                    "name": CONTAINER_NAME,
                    "image": inputs.image,
                    "command": UPGRADE_COMMAND,
                    "args": UPGRADE_ARGS,
                    "env": env,
                    "resources": {"cpu": 0.5, "memory": "1Gi"},
                }],
            },
        },
    }


def _grant_container(inputs: AppInputs, env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": GRANT_CONTAINER_NAME,
        "image": inputs.image,
        "command": GRANT_COMMAND,
        "args": GRANT_ARGS,
        "env": env,
        # With the main container 0.75 CPU / 1.5Gi, a Consumption combination either way
        # the platform counts init containers.
        "resources": {"cpu": 0.25, "memory": "0.5Gi"},
    }


class MigrationJob(Resource):
    """Uses the app's inputs (image, identity, URIs); converges the job, then runs it if the
    MLflow version is about to change."""

    key = "migration"
    kind = azure_apps.JOB
    tagged = True

    def __init__(self, app: ContainerApp) -> None:
        self.app = app
        # The app's, and the migration identity (the job signs in with it).
        self.deps = (*app.deps, "migration_identity")

    def ids(self, ctx: Context) -> tuple[str, ...]:
        return (ctx.names.resource_group, ctx.names.job)

    def label(self, ctx: Context) -> str:
        return f"database migration job {ctx.names.job}"

    def desired(self, ctx: Context) -> dict[str, Any]:
        inputs = self.app.inputs(ctx, self.app.predicted_fqdn(ctx))
        client_id = str(ctx.output("migration_identity", "client_id"))
        if ctx.settings.sql_auth == "password":
            from mlflow_aca.resources import sql

            # "<password>" only in a dry run: ensure_password_known ran otherwise.
            backend = ctx.settings.backend_store_uri(ctx.cloud, password=ctx.private.get(sql.PASSWORD_KEY)
                                                     or "<password>")
        else:
            backend = ctx.settings.backend_store_uri(ctx.cloud, client_id=client_id)
        migration = MigrationInputs(
            identity_id=str(ctx.output("migration_identity", "id")), client_id=client_id,
            backend_store_uri=backend, app_identity_name=ctx.names.identity,
            app_password=ctx.private.get(APP_PASSWORD_KEY))
        return migration_job_spec(ctx.settings, inputs, ctx.tags, migration)

    def publish(self, ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
        return {"id": state.get("id")}

    def ensure(self, ctx: Context) -> StepResult:
        from mlflow_aca.resources import sql

        current = self.settled_read(ctx)
        status = self.claim(ctx, current)
        stored = azure_apps.job_secrets(ctx.session, *self.ids(ctx)) if current else {}
        app_state, app_secrets = self.app.read_with_secrets(ctx) if ctx.settings.sql_auth == "password" \
            else (None, {})
        reset = sql.ensure_password_known(ctx, sql.SqlServer(), _stored_password(ctx, stored, app_secrets))
        ensure_app_password_known(ctx, app_secrets.get(BACKEND_SECRET), (app_state or {}).get("tags"))
        needed, why = self.migration_needed(ctx)
        if reset is not None:
            why = f"{reset.detail}; {why}"
        desired = self.claimed(ctx, self.desired(ctx), current, status)
        fields = [] if current is None else self.secret_aware_changes(ctx, desired, current, stored)
        adoption = adoption_note(status, ctx.dry_run)
        if adoption:
            why = f"{why}; {adoption}"
        if ctx.dry_run:
            return _planned(current, fields, needed, why)
        written = current is None or bool(fields) or provisioning_state(current) == "failed"
        if written:
            self.create(ctx, desired)
        if not needed:
            return StepResult("updated" if written else "ok", why, {"changes": fields})
        execution, note = run_to_completion(ctx, *self.ids(ctx))
        return StepResult("ran", f"{why}: execution {execution} succeeded" + (f" {note}" if note else ""))

    def secret_aware_changes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any],
                             stored: dict[str, str]) -> list[str]:
        """Differences from the job as Azure holds it, secret values (`stored`, from
        listSecrets) included: a GET alone would make every secret look changed."""
        return self.changes(ctx, desired, with_secret_values(current, stored))

    def migration_needed(self, ctx: Context) -> tuple[bool, str]:
        app = self.app.read(ctx)
        if app is None:
            return True, "new app: schema created or upgraded before the first revision"
        tags = app.get("tags") or {}
        deployed = tags.get(VERSION_TAG)
        if deployed != ctx.settings.mlflow_version:
            return True, f"MLflow {deployed or 'unknown'} -> {ctx.settings.mlflow_version}"
        pending = ctx.private.get(APP_USER_PENDING)   # set by ensure_app_password_known
        if pending:
            return True, pending
        if ctx.settings.sql_auth == "entra":
            # The app writes the tag only after a job run created its user: absent (a deployment
            # from before the app had a user of its own) or another client id (the identity was
            # recreated), the user is not known to be there.
            client_id = str(ctx.output("identity", "client_id"))
            if str(tags.get(DB_USER_TAG) or "").lower() != client_id.lower():
                return True, (f"database user for the app's identity {ctx.names.identity} "
                              + ("not yet created" if not tags.get(DB_USER_TAG) else "recreated (new client id)"))
        return False, f"schema already at MLflow {deployed}"


def _planned(current: dict[str, Any] | None, fields: list[str], needed: bool, why: str) -> StepResult:
    """What deploy would do to the job, in a plan: its definition (create / update with the
    changed fields, as deploy reports them) and, apart from that, whether an execution runs.
    A job definition that changes while the schema is current (a new image of the same MLflow
    version) is an update that runs nothing: said so, so the row cannot be read as a pending
    schema upgrade."""
    if current is not None and provisioning_state(current) == "failed":
        fields = [*fields, "properties.provisioningState (Failed: reapplied)"]  # as deploy rewrites it
    planned = "create" if current is None else "update" if fields else "run" if needed else "ok"
    run = f"then run: {why}" if needed else f"no run: {why}"
    detail = why if planned in ("run", "ok") else ", ".join([*fields, run])
    return StepResult(planned, detail, {"changes": fields, "runs": needed})


def _stored_password(ctx: Context, job_secrets: dict[str, str], app_secrets: dict[str, str]) -> str | None:
    """The administrator's password: the job's copy, else (a deployment from before the app had
    a user of its own) the app's, when its URI still signs in as the administrator login."""
    for uri in (job_secrets.get(BACKEND_SECRET), app_secrets.get(BACKEND_SECRET)):
        user, password = credentials_from_uri(uri)
        if password and user == ctx.settings.sql_admin_login:
            return password
    return None


def run_to_completion(ctx: Context, resource_group: str, job: str) -> tuple[str, str]:
    """Run the job once to success; returns the execution's name and a note on retries.

    An execution whose image cannot be pulled ends Failed, and the execution API says no more
    than that. While the identity's AcrPull assignment is young enough to be still propagating
    (image_pull.PROPAGATION_SECONDS), a failed execution is taken for a refused pull and started
    again, within timeout_minutes: the upgrade is idempotent (Alembic applies only the missing
    revisions), so running it again after a real failure costs one more failure, not damage.
    Bounded three ways: PULL_RETRIES executions, the grant's age, timeout_minutes; the waits
    between them double from half the poll interval, up to a minute (as for PrincipalNotFound in
    roles.py), which with the default poll interval spans the few minutes a grant usually takes."""
    deadline = time.monotonic() + ctx.settings.timeout_minutes * 60
    failed: list[str] = []
    while True:
        name, status = _execute(ctx, resource_group, job)
        if status.lower() == "succeeded":
            note = (f"after {len(failed)} failed execution{'s' if len(failed) > 1 else ''} "
                    f"({', '.join(failed)}) while the AcrPull grant propagated") if failed else ""
            return name, note
        age = image_pull.acr_pull_age(ctx)
        pause = backoff(ctx.settings.poll_interval, len(failed))
        if image_pull.still_propagating(age) and len(failed) < PULL_RETRIES \
                and time.monotonic() + pause < deadline:
            failed.append(name)
            time.sleep(pause)
            continue
        young = image_pull.still_propagating(age)
        pull = (f" Its identity {ctx.outputs.get('identity', {}).get('client_id')} was granted AcrPull on "
                f"{ctx.outputs.get('registry', {}).get('login_server')} {image_pull.describe_age(age or 0)}: "
                "the image pull may still be refused while the grant propagates (up to 10 minutes)."
                if young else "")
        raise OperationError(
            f"The database migration ({job}, execution {name}) ended {status}"
            f"{f' after {len(failed)} retries' if failed else ''}; the app was not updated and keeps "
            f"serving its current revision.{pull}",
            code="MigrationFailed",
            hint="Rerun `mlflow-aca deploy` in a few minutes." if young else
            "Read the execution's logs in the Log Analytics workspace "
            "(ContainerAppConsoleLogs_CL), fix the cause and rerun `mlflow-aca deploy`.",
        )


def wait_for_running(ctx: Context, resource_group: str, job: str) -> list[str]:
    """Never start an upgrade beside another one: two `mlflow db upgrade` at once race on the
    same Alembic version table. An execution still running (started by a run that was killed,
    or by hand; runs of the tool itself are serialised by lease.py) is waited for, within
    timeout_minutes, rather than refused: it cannot be stopped safely half-way through a schema
    change, it ends on its own (replicaTimeout), and the upgrade started after it is idempotent
    (Alembic applies only what is missing), so this run's own execution still runs with this
    run's image. Returns the names of the executions waited for."""
    deadline = time.monotonic() + ctx.settings.timeout_minutes * 60
    waited: list[str] = []
    while True:
        active = [str(e.get("name")) for e in azure_apps.job_executions(ctx.session, resource_group, job)
                  if str(dig(e, "properties.status") or "").lower() in _ACTIVE]
        if not active:
            return waited
        waited += [name for name in active if name not in waited]
        if time.monotonic() >= deadline:
            raise OperationError(
                f"Execution {', '.join(active)} of the migration job {job} is still running after "
                f"{ctx.settings.timeout_minutes} minutes; another upgrade is not started beside it.",
                code="MigrationBusy", hint="Wait for it to end (or stop it in Azure), then rerun.")
        time.sleep(max(ctx.settings.poll_interval, 0.5))


def _execute(ctx: Context, resource_group: str, job: str) -> tuple[str, str]:
    """Start an execution once none is running, and wait until it ends: its name and final status."""
    wait_for_running(ctx, resource_group, job)
    started = azure_apps.start_job(ctx.session, resource_group, job)
    name = str(started.get("name") or started.get("id", "").rsplit("/", 1)[-1])
    deadline = time.monotonic() + TIMEOUT_SECONDS + 300
    while True:
        execution = azure_apps.job_execution(ctx.session, resource_group, job, name)
        status = str(dig(execution, "properties.status") or "")
        if status.lower() in _FINISHED:
            return name, status
        if time.monotonic() >= deadline:
            raise OperationError(f"The database migration {name} did not finish in time (status {status}).",
                                 code="MigrationTimeout", hint="Check the job execution in Azure, then rerun.")
        time.sleep(ctx.settings.poll_interval)
