"""The server image's SQLAlchemy plugin (templates/mlflow_aca_sql.py), loaded the way MLflow's
engine loads it (`plugin=mlflow_aca` in the backend URI the product deploys), retrying logins
that Microsoft's real driver reports refused with 40613 while a serverless database resumes.

The driver itself makes exactly one login attempt on 40613, whatever ConnectRetryCount says
(test_driver_login.py): without the plugin, the first request after a pause fails.
"""

from __future__ import annotations

import pyodbc
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from mlflow_aca.uris import backend_store_uri

from .conftest import HOST

PASSWORD = "Pa55;w}rd-x"


@pytest.fixture
def engine_for(front, image_plugin):
    """An engine for the URI the product deploys (password mode), its host pointed at the front,
    with the pool MLflow uses when the database may pause."""
    engines = []

    def make(uri: str) -> sqlalchemy.Engine:
        url = make_url(uri).set(host=HOST, port=front.port)
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                          connect_args={"timeout": 10})
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def deployed_uri() -> str:
    return backend_store_uri(sql_host="mlflow-sql-abc123.database.windows.net", database="mlflow",
                             user="mlflowadmin", password=PASSWORD)


def connect(engine: sqlalchemy.Engine) -> None:
    """Open one connection. The front answers no SQLAlchemy set-up query, so after a successful
    login the dialect's first-connect queries fail: only the login matters here."""
    try:
        engine.raw_connection().close()
    except (pyodbc.Error, sqlalchemy.exc.DBAPIError) as error:
        assert "40613" not in str(error), error


@pytest.mark.parametrize("severity", [20, 14])  # pyodbc.Error and ProgrammingError (observed)
def test_a_login_refused_while_the_database_resumes_is_retried(front, engine_for, severity):
    front.refuse(2, number=40613, severity=severity)
    connect(engine_for(deployed_uri()))
    outcomes = [login.outcome for login in front.logins]
    assert outcomes[:2] == ["refused 40613"] * 2 and outcomes[2] == "accepted", outcomes
    assert {(login.user, login.password) for login in front.logins} == {("mlflowadmin", PASSWORD)}


def test_without_the_plugin_the_first_refusal_is_the_answer(front, engine_for):
    # The control: the same URI less `plugin=` fails at once on the refused login.
    front.refuse(2, number=40613)
    uri = str(make_url(deployed_uri()).difference_update_query(["plugin"]).render_as_string(hide_password=False))
    with pytest.raises(pyodbc.Error, match="40613"):
        engine_for(uri).raw_connection()
    assert [login.outcome for login in front.logins] == ["refused 40613"]


def test_a_login_that_is_not_transient_is_not_retried(front, engine_for):
    front.refuse(1, number=18456, severity=14)  # login failed: wrong password is final
    with pytest.raises(pyodbc.Error, match="18456"):
        engine_for(deployed_uri()).raw_connection()
    assert len(front.logins) == 1


def test_retries_are_bounded_and_the_last_refusal_is_reported(front, engine_for, monkeypatch):
    # A shorter schedule through the variable the plugin reads, so the test does not wait out
    # the default minute; the bound is what is under test.
    monkeypatch.setenv("MLFLOW_ACA_SQL_RETRY_DELAYS", "0.1,0.2")
    front.refuse(10, number=40613)
    with pytest.raises(pyodbc.Error, match="40613"):
        engine_for(deployed_uri()).raw_connection()
    assert [login.outcome for login in front.logins] == ["refused 40613"] * 3

