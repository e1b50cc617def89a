"""The SQL server's desired state and its Entra administrator settings, and the migration job's
secret comparison: what a rerun compares, by value."""

import copy

from mlflow_aca.cloud import KNOWN_CLOUDS
from mlflow_aca.config import Settings
from mlflow_aca.deployment import infrastructure
from mlflow_aca.resources.app import (
    BACKEND_SECRET,
    AppInputs,
    ContainerApp,
    app_backend_uri,
    app_user,
    app_user_tag,
)
from mlflow_aca.resources.base import Context, Pending
from mlflow_aca.resources.job import (
    APP_PASSWORD_SECRET,
    GRANT_CONTAINER_NAME,
    MigrationInputs,
    MigrationJob,
    migration_job_spec,
)
from mlflow_aca.resources.sql import SqlDatabase, SqlEntraAdmin, SqlEntraOnly, SqlServer
from tests.sqlfront.front import sid_of
from tests.values import SUBSCRIPTION

CLOUD = KNOWN_CLOUDS["AzureCloud"]
CLIENT_ID = "0b7c3c6e-8d55-4a57-9f39-0d7cf1c0a1b2"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
MIGRATION_CLIENT_ID = "5d2f6a7e-1c3b-4e8f-a9d0-2b4c6e8f0a1c"


def context(dry_run=False, **overrides):
    settings = Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION, **overrides)
    ctx = Context(settings=settings, cloud=CLOUD, session=None, dry_run=dry_run)
    if not dry_run:
        ctx.publish("identity", {"client_id": CLIENT_ID, "tenant_id": TENANT_ID})
        ctx.publish("migration_identity", {"client_id": MIGRATION_CLIENT_ID, "tenant_id": TENANT_ID})
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
    # The migration job's identity, never the app's.
    assert SqlEntraAdmin().desired(ctx) == {"properties": {
        "administratorType": "ActiveDirectory", "login": "mlflow-migrate-id", "sid": MIGRATION_CLIENT_ID,
        "tenantId": TENANT_ID}}
    assert ctx.names.migration_identity == "mlflow-migrate-id" != ctx.names.identity
    assert SqlEntraAdmin().ids(ctx)[-1] == "ActiveDirectory"
    assert SqlEntraOnly().desired(ctx) == {"properties": {"azureADOnlyAuthentication": True}}
    assert SqlEntraOnly().ids(ctx)[-1] == "Default"


def test_entra_administrator_guids_compare_case_insensitively():
    ctx, admin = context(), SqlEntraAdmin()
    desired = admin.desired(ctx)
    current = {"id": "/x", "properties": {**desired["properties"], "sid": MIGRATION_CLIENT_ID.upper(),
                                          "tenantId": TENANT_ID.upper(), "azureADOnlyAuthentication": True}}
    assert admin.changes(ctx, desired, current) == []
    other = copy.deepcopy(current)
    other["properties"].update(sid="11111111-2222-3333-4444-555555555555", login="someone-else")
    assert admin.changes(ctx, desired, other) == ["properties.login", "properties.sid"]


def test_a_planned_identity_is_not_a_difference():
    ctx, admin = context(dry_run=True), SqlEntraAdmin()
    desired = admin.desired(ctx)
    assert isinstance(desired["properties"]["sid"], Pending)
    current = {"properties": {"administratorType": "ActiveDirectory", "login": ctx.names.migration_identity,
                              "sid": MIGRATION_CLIENT_ID, "tenantId": TENANT_ID}}
    assert admin.changes(ctx, desired, current) == []


APP_PASSWORD = "App-Passw0rd-9"


def job_and_inputs(password, sql_auth="password"):
    """The job's spec; with a password, the administrator's URI (what its secret holds)."""
    ctx = context(sql_auth=sql_auth)
    settings = ctx.settings
    entra = sql_auth == "entra"
    inputs = AppInputs(
        image="acrmlflow.azurecr.io/mlflow-server:3.17.2-abc",
        identity_id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlflow/providers/"
                    "Microsoft.ManagedIdentity/userAssignedIdentities/mlflow-id",
        identity_client_id=CLIENT_ID,
        environment_id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlflow/providers/"
                       "Microsoft.App/managedEnvironments/mlflow-env",
        registry_server="acrmlflow.azurecr.io", fqdn="mlflow.example.io",
        backend_store_uri=settings.backend_store_uri(CLOUD, client_id=CLIENT_ID) if entra
        else app_backend_uri(settings, CLOUD, APP_PASSWORD),
        artifacts_destination=settings.artifacts_destination(CLOUD))
    admin = settings.backend_store_uri(CLOUD, client_id=MIGRATION_CLIENT_ID) if entra \
        else settings.backend_store_uri(CLOUD, password=password)
    migration = MigrationInputs(
        identity_id=inputs.identity_id.replace("mlflow-id", "mlflow-migrate-id"), client_id=MIGRATION_CLIENT_ID,
        backend_store_uri=admin, app_identity_name="mlflow-id", app_password=None if entra else APP_PASSWORD)
    return ctx, migration_job_spec(settings, inputs, settings.tags_for_resources, migration), admin


def as_get_returns(job):
    """The job as a GET shows it: secret names without their values."""
    shown = copy.deepcopy(job)
    for secret in shown["properties"]["configuration"]["secrets"]:
        del secret["value"]
    return shown


def test_an_unchanged_job_secret_is_not_a_difference():
    ctx, desired, uri = job_and_inputs("Old-Passw0rd-1")
    job = MigrationJob(ContainerApp("acrmlflow.azurecr.io/mlflow-server:3.17.2-abc"))
    stored = {BACKEND_SECRET: uri, APP_PASSWORD_SECRET: APP_PASSWORD}
    assert job.secret_aware_changes(ctx, desired, as_get_returns(desired), stored) == []


def test_a_new_password_changes_the_job_secret():
    ctx, before, old_uri = job_and_inputs("Old-Passw0rd-1")
    _, after, _ = job_and_inputs("New-Passw0rd-2")  # e.g. after a password reset
    job = MigrationJob(ContainerApp("acrmlflow.azurecr.io/mlflow-server:3.17.2-abc"))
    stored = {BACKEND_SECRET: old_uri, APP_PASSWORD_SECRET: APP_PASSWORD}
    assert job.secret_aware_changes(ctx, after, as_get_returns(before), stored) == [
        "properties.configuration.secrets[0].value"]
    # Without the stored values the secrets always look changed (what a GET alone gives).
    assert job.secret_aware_changes(ctx, before, as_get_returns(before), {}) == [
        "properties.configuration.secrets[0].value", "properties.configuration.secrets[1].value"]


def test_with_entra_the_job_signs_in_as_the_migration_identity_and_grants_in_an_init_container():
    _, job, _ = job_and_inputs(None, sql_auth="entra")
    identities = list(job["identity"]["userAssignedIdentities"])
    assert [i.rsplit("/", 1)[-1] for i in identities] == ["mlflow-id", "mlflow-migrate-id"]
    assert job["properties"]["configuration"]["registries"][0]["identity"].endswith("/mlflow-id")
    (grant,) = job["properties"]["template"]["initContainers"]
    (upgrade,) = job["properties"]["template"]["containers"]
    assert grant["name"] == GRANT_CONTAINER_NAME and (grant["command"], grant["args"]) == (
        ["python", "-m", "mlflow_aca_sql"], ["grant"])
    for container in (grant, upgrade):
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["AZURE_CLIENT_ID"] == MIGRATION_CLIENT_ID
        assert env["MLFLOW_BACKEND_STORE_URI"].startswith(f"mssql+pyodbc://{MIGRATION_CLIENT_ID}@")
        assert all("mssql" not in arg for arg in container["args"])   # the URI only in the environment
    env = {e["name"]: e["value"] for e in grant["env"]}
    assert (env["MLFLOW_ACA_APP_USER"], env["MLFLOW_ACA_APP_CLIENT_ID"]) == ("mlflow-id", CLIENT_ID)
    # 0.25 + 0.5 CPU, 0.5 + 1 GiB: a Consumption combination (and so is the main container alone).
    assert (grant["resources"], upgrade["resources"]) == ({"cpu": 0.25, "memory": "0.5Gi"}, {"cpu": 0.5, "memory": "1Gi"})


def test_with_a_password_the_job_keeps_one_identity_and_grants_as_the_administrator_login():
    """The job's secrets: the administrator's URI and the app user's password; both reach the
    containers by secretRef only. The app user is not the administrator login."""
    _, job, admin = job_and_inputs("Old-Passw0rd-1")
    assert [i.rsplit("/", 1)[-1] for i in job["identity"]["userAssignedIdentities"]] == ["mlflow-id"]
    assert job["properties"]["configuration"]["secrets"] == [
        {"name": BACKEND_SECRET, "value": admin}, {"name": APP_PASSWORD_SECRET, "value": APP_PASSWORD}]
    assert admin.startswith("mssql+pyodbc://mlflowadmin:Old-Passw0rd-1@")
    (grant,) = job["properties"]["template"]["initContainers"]
    (upgrade,) = job["properties"]["template"]["containers"]
    assert grant["name"] == GRANT_CONTAINER_NAME and (grant["command"], grant["args"]) == (
        ["python", "-m", "mlflow_aca_sql"], ["grant"])
    for container in (grant, upgrade):
        env = {e["name"]: e for e in container["env"]}
        assert env["MLFLOW_BACKEND_STORE_URI"] == {"name": "MLFLOW_BACKEND_STORE_URI", "secretRef": BACKEND_SECRET}
    env = {e["name"]: e for e in grant["env"]}
    assert env["MLFLOW_ACA_APP_USER"] == {"name": "MLFLOW_ACA_APP_USER", "value": "mlflowadmin_app"}
    assert env["MLFLOW_ACA_APP_PASSWORD"] == {"name": "MLFLOW_ACA_APP_PASSWORD", "secretRef": APP_PASSWORD_SECRET}
    assert "MLFLOW_ACA_APP_CLIENT_ID" not in env
    text = str(job["properties"]["template"])
    assert "Old-Passw0rd-1" not in text and APP_PASSWORD not in text


def test_with_a_password_the_app_user_is_never_the_administrator_login():
    for login in ("mlflowadmin", "x_app", "a" * 128):
        settings = context(sql_auth="password", sql_admin_login=login).settings
        user = app_user(settings)
        assert user != login and len(user) <= 128 and user.endswith("_app")
    settings = context(sql_auth="password").settings
    uri = app_backend_uri(settings, CLOUD, APP_PASSWORD)
    assert uri.startswith(f"mssql+pyodbc://mlflowadmin_app:{APP_PASSWORD}@") and "/mlflow?" in uri
    assert app_user_tag(settings) == "password:mlflowadmin_app"


# -- the image's grant (templates/mlflow_aca_sql.py) ------------------------------------------------
def test_the_test_sid_helper_matches_the_documented_vector():
    assert sid_of("35918bc9-196d-40ea-9779-889d79b753f0") == "0xC98B91356D19EA409779889D79B753F0"


def test_the_sid_is_the_client_id_in_guid_byte_order(image_plugin):
    import mlflow_aca_sql

    # .NET's Guid.ToByteArray, the order SQL Server stores a uniqueidentifier in: the example of
    # learn.microsoft.com/dotnet/api/system.guid.tobytearray (35918bc9-... -> C9 8B 91 35 6D 19 EA 40 ...).
    assert mlflow_aca_sql.sid_literal("35918bc9-196d-40ea-9779-889d79b753f0") == "0xC98B91356D19EA409779889D79B753F0"
    assert mlflow_aca_sql.sid_literal("35918BC9-196D-40EA-9779-889D79B753F0") == "0xC98B91356D19EA409779889D79B753F0"


def test_the_grant_statement_creates_the_user_once_and_adds_only_missing_roles(image_plugin):
    import mlflow_aca_sql

    sid = "0xC98B91356D19EA409779889D79B753F0"
    text = mlflow_aca_sql.grant_statement("mlflow-id", "35918bc9-196d-40ea-9779-889d79b753f0")
    assert text.splitlines()[:5] == [
        f"DECLARE @sid varbinary(85) = {sid};",
        "IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'mlflow-id' AND (sid IS NULL OR sid <> @sid))",
        "    DROP USER [mlflow-id];",
        "IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'mlflow-id')",
        f"    CREATE USER [mlflow-id] WITH SID = {sid}, TYPE = E;",
    ]
    assert [line.strip() for line in text.splitlines() if line.strip().startswith("ALTER ROLE")] == [
        "ALTER ROLE [db_datareader] ADD MEMBER [mlflow-id];", "ALTER ROLE [db_datawriter] ADD MEMBER [mlflow-id];"]
    assert text.count("WHERE r.name = N'db_datareader' AND u.name = N'mlflow-id')") == 1
    assert "db_owner" not in text and "db_ddladmin" not in text and "EXTERNAL PROVIDER" not in text


def test_the_grant_statement_refuses_what_could_break_out_of_its_quotes(image_plugin):
    import mlflow_aca_sql
    import pytest

    for name in ("x]; DROP TABLE experiments; --", "it's", "ab", ""):
        with pytest.raises(ValueError):
            mlflow_aca_sql.grant_statement(name, "35918bc9-196d-40ea-9779-889d79b753f0")
    with pytest.raises(ValueError):
        mlflow_aca_sql.grant_statement("mlflow-id", "0x00; DROP USER x")


def test_the_password_statement_creates_or_re_passwords_the_user_and_adds_only_missing_roles(image_plugin):
    import mlflow_aca_sql

    text = mlflow_aca_sql.password_user_statement("mlflowadmin_app", "Pa-ss.w0rd~!*")
    assert text.splitlines()[:6] == [
        "IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'mlflowadmin_app' AND authentication_type <> 2)",
        "    DROP USER [mlflowadmin_app];",
        "IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'mlflowadmin_app')",
        "    ALTER USER [mlflowadmin_app] WITH PASSWORD = 'Pa-ss.w0rd~!*';",
        "ELSE",
        "    CREATE USER [mlflowadmin_app] WITH PASSWORD = 'Pa-ss.w0rd~!*';",
    ]
    assert [line.strip() for line in text.splitlines() if line.strip().startswith("ALTER ROLE")] == [
        "ALTER ROLE [db_datareader] ADD MEMBER [mlflowadmin_app];",
        "ALTER ROLE [db_datawriter] ADD MEMBER [mlflowadmin_app];"]
    assert "db_owner" not in text and "db_ddladmin" not in text and "LOGIN" not in text


def test_the_password_goes_in_as_a_literal_with_its_quotes_doubled(image_plugin):
    import mlflow_aca_sql
    import pytest

    assert mlflow_aca_sql.password_literal("it's") == "'it''s'"
    text = mlflow_aca_sql.password_user_statement("mlflow_app", "a'; DROP TABLE experiments; --")
    assert "WITH PASSWORD = 'a''; DROP TABLE experiments; --';" in text
    # Outside its literal the statement has only an even number of quotes per line: nothing escapes.
    assert all(line.count("'") % 2 == 0 for line in text.splitlines())
    for password in ("", "x" * 129, "a\x00b"):
        with pytest.raises(ValueError):
            mlflow_aca_sql.password_literal(password)
    for name in ("x]; DROP TABLE experiments; --", "it's", "mlflow-app", "1abc", ""):
        with pytest.raises(ValueError):
            mlflow_aca_sql.password_user_statement(name, "Pa-ss.w0rd")
