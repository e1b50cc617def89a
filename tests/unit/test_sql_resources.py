"""The SQL server's desired state and its Entra administrator settings, and the migration job's
secret comparison: what a rerun compares, by value."""

import copy

from mlflow_aca.cloud import KNOWN_CLOUDS
from mlflow_aca.config import Settings
from mlflow_aca.deployment import infrastructure
from mlflow_aca.resources.app import BACKEND_SECRET, AppInputs, ContainerApp
from mlflow_aca.resources.base import Context, Pending
from mlflow_aca.resources.job import MigrationJob, migration_job_spec
from mlflow_aca.resources.sql import SqlDatabase, SqlEntraAdmin, SqlEntraOnly, SqlServer
from tests.values import SUBSCRIPTION

CLOUD = KNOWN_CLOUDS["AzureCloud"]
CLIENT_ID = "0b7c3c6e-8d55-4a57-9f39-0d7cf1c0a1b2"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def context(dry_run=False, **overrides):
    settings = Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION, **overrides)
    ctx = Context(settings=settings, cloud=CLOUD, session=None, dry_run=dry_run)
    if not dry_run:
        ctx.publish("identity", {"client_id": CLIENT_ID, "tenant_id": TENANT_ID})
    return ctx


def test_the_server_body_never_carries_the_entra_administrator():
    entra = SqlServer().desired(context())
    assert "administrators" not in entra["properties"]
    assert "administratorLogin" not in entra["properties"]
    password = SqlServer().desired(context(sql_auth="password"))
    assert password["properties"]["administratorLogin"] == "mlflowadmin"


def test_entra_settings_are_resources_of_their_own_only_with_entra():
    keys = [r.key for r in infrastructure(context())]
    assert {"sql_server", "sql_entra_admin", "sql_entra_only"} <= set(keys)
    database = next(r for r in infrastructure(context()) if r.key == "sql_database")
    assert database.deps == ("sql_server", "sql_entra_only")
    keys = [r.key for r in infrastructure(context(sql_auth="password"))]
    assert "sql_entra_admin" not in keys and "sql_entra_only" not in keys
    assert SqlDatabase().deps == ("sql_server",)


def test_entra_administrator_desired_state():
    ctx = context()
    assert SqlEntraAdmin().desired(ctx) == {"properties": {
        "administratorType": "ActiveDirectory", "login": ctx.names.identity, "sid": CLIENT_ID,
        "tenantId": TENANT_ID}}
    assert SqlEntraAdmin().ids(ctx)[-1] == "ActiveDirectory"
    assert SqlEntraOnly().desired(ctx) == {"properties": {"azureADOnlyAuthentication": True}}
    assert SqlEntraOnly().ids(ctx)[-1] == "Default"


def test_entra_administrator_guids_compare_case_insensitively():
    ctx, admin = context(), SqlEntraAdmin()
    desired = admin.desired(ctx)
    current = {"id": "/x", "properties": {**desired["properties"], "sid": CLIENT_ID.upper(),
                                          "tenantId": TENANT_ID.upper(), "azureADOnlyAuthentication": True}}
    assert admin.changes(ctx, desired, current) == []
    other = copy.deepcopy(current)
    other["properties"].update(sid="11111111-2222-3333-4444-555555555555", login="someone-else")
    assert admin.changes(ctx, desired, other) == ["properties.login", "properties.sid"]


def test_a_planned_identity_is_not_a_difference():
    ctx, admin = context(dry_run=True), SqlEntraAdmin()
    desired = admin.desired(ctx)
    assert isinstance(desired["properties"]["sid"], Pending)
    current = {"properties": {"administratorType": "ActiveDirectory", "login": ctx.names.identity,
                              "sid": CLIENT_ID, "tenantId": TENANT_ID}}
    assert admin.changes(ctx, desired, current) == []


def job_and_inputs(password):
    ctx = context(sql_auth="password")
    settings = ctx.settings
    inputs = AppInputs(
        image="acrmlflow.azurecr.io/mlflow-server:3.17.2-abc",
        identity_id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlflow/providers/"
                    "Microsoft.ManagedIdentity/userAssignedIdentities/mlflow-id",
        identity_client_id=CLIENT_ID,
        environment_id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlflow/providers/"
                       "Microsoft.App/managedEnvironments/mlflow-env",
        registry_server="acrmlflow.azurecr.io", fqdn="mlflow.example.io",
        backend_store_uri=settings.backend_store_uri(CLOUD, password=password),
        artifacts_destination=settings.artifacts_destination(CLOUD))
    return ctx, migration_job_spec(settings, inputs, settings.tags_for_resources), inputs.backend_store_uri


def as_get_returns(job):
    """The job as a GET shows it: secret names without their values."""
    shown = copy.deepcopy(job)
    for secret in shown["properties"]["configuration"]["secrets"]:
        del secret["value"]
    return shown


def test_an_unchanged_job_secret_is_not_a_difference():
    ctx, desired, uri = job_and_inputs("Old-Passw0rd-1")
    job = MigrationJob(ContainerApp("acrmlflow.azurecr.io/mlflow-server:3.17.2-abc"))
    assert job.secret_aware_changes(ctx, desired, as_get_returns(desired), {BACKEND_SECRET: uri}) == []


def test_a_new_password_changes_the_job_secret():
    ctx, before, old_uri = job_and_inputs("Old-Passw0rd-1")
    _, after, _ = job_and_inputs("New-Passw0rd-2")  # e.g. after a password reset
    job = MigrationJob(ContainerApp("acrmlflow.azurecr.io/mlflow-server:3.17.2-abc"))
    assert job.secret_aware_changes(ctx, after, as_get_returns(before), {BACKEND_SECRET: old_uri}) == [
        "properties.configuration.secrets[0].value"]
    # Without the stored values the secret always looks changed (what a GET alone gives).
    assert job.secret_aware_changes(ctx, before, as_get_returns(before), {}) == [
        "properties.configuration.secrets[0].value"]
