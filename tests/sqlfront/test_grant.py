"""The image's grant (templates/mlflow_aca_sql.py `grant`) through Microsoft's real ODBC driver to
the SQL front: it signs in with the backend URI the product deploys (managed identity, UID = client
id), sends its T-SQL as one batch, and is refused 15247 when its identity is not the server's
administrator (the front's permission rule, as Azure SQL has it)."""

from __future__ import annotations

import pyodbc
import pytest

from mlflow_aca.uris import backend_store_uri

from .conftest import HOST

APP_USER, APP_CLIENT_ID = "mlflow-id", "35918bc9-196d-40ea-9779-889d79b753f0"


def uri_for(front, client_id: str) -> str:
    return backend_store_uri(sql_host=HOST, database="mlflow", user=client_id).replace(
        f"@{HOST}:1433/", f"@{HOST}:{front.port}/")


def test_the_administrator_creates_the_apps_user_in_one_batch(front, standin, identity, container_identity_env,
                                                              image_plugin):
    import mlflow_aca_sql

    front.accept_batches, front.claims = True, standin.app.tokens.verify
    front.admin = {"oid": identity.principal_id, "appid": identity.client_id}
    front.refuse(1)   # a resuming serverless database: retried like the engine plugin retries

    mlflow_aca_sql.grant(uri_for(front, identity.client_id), APP_USER, APP_CLIENT_ID, delays=(0.1,))

    assert [login.outcome for login in front.logins] == ["refused 40613", "accepted"]
    (statement,) = front.statements()
    assert statement.outcome == "done"
    assert (statement.claims["appid"], statement.claims["oid"]) == (identity.client_id, identity.principal_id)
    assert statement.text == mlflow_aca_sql.grant_statement(APP_USER, APP_CLIENT_ID)
    assert "CREATE USER [mlflow-id] WITH SID = 0xC98B91356D19EA409779889D79B753F0, TYPE = E;" in statement.text


def test_another_identity_is_refused_15247(front, standin, identity, container_identity_env, image_plugin):
    import mlflow_aca_sql

    front.accept_batches, front.claims = True, standin.app.tokens.verify
    front.admin = {"oid": "00000000-0000-0000-0000-000000000001", "appid": "00000000-0000-0000-0000-000000000002"}
    with pytest.raises(pyodbc.ProgrammingError) as err:   # class 14: SQLSTATE 42000
        mlflow_aca_sql.grant(uri_for(front, identity.client_id), APP_USER, APP_CLIENT_ID, delays=())
    assert "User does not have permission to perform this action. (15247)" in str(err.value)
    (statement,) = front.statements()
    assert statement.outcome == "denied 15247" and statement.claims["appid"] == identity.client_id


def test_with_sql_authentication_the_admin_login_creates_the_apps_password_user(front, image_plugin):
    """sql_auth = password: the grant signs in as the administrator login with its password and
    sends the password user's batch; the front (SQL logins checked, only the administrator may
    manage users) accepts it. The same batch from the app's own login is refused 15247."""
    import mlflow_aca_sql

    admin_password, app_password = "Adm1n-Passw0rd.x", "App-Passw0rd~y!"
    front.sql_logins = {"mlflowadmin": admin_password, "mlflowadmin_app": app_password}
    front.accept_batches, front.admin = True, {"user": "mlflowadmin"}

    def uri(user: str, password: str) -> str:
        return backend_store_uri(sql_host=HOST, database="mlflow", user=user, password=password).replace(
            f"@{HOST}:1433/", f"@{HOST}:{front.port}/")

    mlflow_aca_sql.grant(uri("mlflowadmin", admin_password), "mlflowadmin_app", password=app_password, delays=())
    (statement,) = front.statements()
    assert (statement.user, statement.outcome, statement.claims) == ("mlflowadmin", "done", None)
    assert statement.text == mlflow_aca_sql.password_user_statement("mlflowadmin_app", app_password)
    assert f"CREATE USER [mlflowadmin_app] WITH PASSWORD = '{app_password}';" in statement.text

    front.clear()
    with pytest.raises(pyodbc.ProgrammingError) as err:
        mlflow_aca_sql.grant(uri("mlflowadmin_app", app_password), "mlflowadmin_app", password=app_password,
                             delays=())
    assert "(15247)" in str(err.value)
    assert [login.user for login in front.logins] == ["mlflowadmin_app"]
