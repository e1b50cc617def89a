"""Microsoft's ODBC Driver 18 (the real binary, from PyPI) signing in to the SQL front.

What each test pins down was first observed with driver 18.6.2.2 (tests/sqlfront/README.md).
Login timeouts: only pyodbc's `timeout=` (SQL_ATTR_LOGIN_TIMEOUT) bounds a login; the
connection-string keywords `LoginTimeout`, `Connect Timeout` and `Connection Timeout` are ignored
(observed: each waited the default 15 s).
"""

from __future__ import annotations

import struct
import time

import pyodbc
import pytest
from sqlalchemy.dialects.mssql.pyodbc import dialect as PyodbcDialect
from sqlalchemy.engine import make_url

from mlflow_aca.uris import backend_store_uri

from .conftest import HOST, connection_string

SQL_COPT_SS_ACCESS_TOKEN = 1256   # msodbcsql.h
LOGIN_TIMEOUT = 10


def _kinds(login) -> list[str]:
    """The packet/token sequence, e.g. ['C PRELOGIN', 'S PRELOGIN', ...]."""
    return [e.split()[0] + " " + e.split()[1].rstrip(",") for e in login.events if e[:2] in ("C ", "S ")]


# -- (a) managed identity: UID is the client id ----------------------------------------------------------
def test_msi_login_presents_a_token_of_the_identity_for_the_spn(front, standin, identity, container_identity_env):
    # Failing first: the same test with UID=<principal (object) id>, as some Microsoft pages word
    # it, fails (test_msi_login_with_the_object_id_gets_no_token).
    conn = pyodbc.connect(connection_string(front, Authentication="ActiveDirectoryMsi", UID=identity.client_id),
                          timeout=LOGIN_TIMEOUT)
    assert conn.execute("SELECT 1").fetchall()[0][0] == 1
    conn.close()

    login = front.wait_for_login(predicate=lambda x: x.outcome == "accepted")
    assert _kinds(login) == ["C PRELOGIN", "S PRELOGIN", "C LOGIN7", "S FEDAUTHINFO", "C FEDAUTH_TOKEN",
                             "S ENVCHANGE(database)"]
    assert login.events[-1] == ("S ENVCHANGE(database), INFO 5701, ENVCHANGE(collation), ENVCHANGE(language), "
                                "INFO 5703, LOGINACK(0x74000004), FEATUREEXTACK(FEDAUTH), ENVCHANGE(packet size 4096), "
                                "DONE")
    assert login.fedauth_required_asked and login.tls_version == "TLSv1.2"
    assert (login.fedauth_library, login.fedauth_workflow, login.fedauth_echo) == (0x02, 0x01, True)
    assert login.user == "" and login.password == "" and login.database == "mlflow"
    assert login.token_nul_terminated   # the driver sends the token NUL-terminated
    claims = standin.app.tokens.verify(login.token)
    assert claims is not None, "the token is not one the stand-in signed"
    assert (claims["aud"], claims["appid"], claims["oid"]) == (front.spn, identity.client_id, identity.principal_id)
    assert front.spn == "https://database.windows.net/"

    [asked] = [r for r in standin.identity_requests() if r["via"] == "http"]
    assert asked["request_line"] == (
        "GET /msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fdatabase.windows.net%2F"
        f"&client_id={identity.client_id} HTTP/1.1")
    assert (asked["header"], asked["status"], asked["user_agent"]) == ("right", 200, "AzureADAuthProvider")


# -- (b) managed identity: UID is the object id --------------------------------------------------------------
def test_msi_login_with_the_object_id_gets_no_token(front, standin, identity, container_identity_env):
    with pytest.raises(pyodbc.OperationalError) as err:
        pyodbc.connect(connection_string(front, Authentication="ActiveDirectoryMsi", UID=identity.principal_id),
                       timeout=3)
    # No clearer error than the login timeout: the endpoint's 400 is never shown.
    assert err.value.args[0] == "HYT00" and "Login timeout expired" in str(err.value)

    login = front.wait_for_login()
    assert login.token is None and login.outcome.startswith("closed by client")
    assert _kinds(login)[-1] == "S FEDAUTHINFO"
    asked = [r for r in standin.identity_requests() if r["via"] == "http"]
    # The driver sends the UID as client_id whatever it is, and retries the 400 (observed: at
    # about 0, 0.5, 1.5 and 3.5 s).
    assert asked and {r["query"]["client_id"] for r in asked} == {identity.principal_id}
    assert {r["status"] for r in asked} == {400}


# -- (c) SQL authentication through the product's URI -----------------------------------------------------
PASSWORD = "p;w}d{=x ü€'\"%+@:/?"


def _odbc_string(uri: str, port: int) -> str:
    """What SQLAlchemy's mssql+pyodbc dialect hands pyodbc for `uri`. create_engine drops the
    `plugin` query parameter before the dialect sees the URL (sqlalchemy.engine.create); so does this."""
    url = make_url(uri).set(port=port).difference_update_query(["plugin", "plugins"])
    (args, kwargs) = PyodbcDialect().create_connect_args(url)
    assert not kwargs
    return args[0]


def test_sql_login_password_survives_the_uri_and_the_odbc_string(front):
    front.sql_logins = {"mlflowadmin": PASSWORD}
    uri = backend_store_uri(sql_host=HOST, database="mlflow", user="mlflowadmin", password=PASSWORD)
    conn = pyodbc.connect(_odbc_string(uri, front.port), timeout=LOGIN_TIMEOUT)
    assert conn.execute("SELECT 1").fetchall()[0][0] == 1
    conn.close()
    login = front.wait_for_login()
    assert (login.user, login.password, login.database) == ("mlflowadmin", PASSWORD, "mlflow")
    assert login.outcome == "accepted"
    assert login.fedauth_library is None and "C FEDAUTH_TOKEN" not in _kinds(login)


def test_sql_login_with_a_wrong_password_is_refused_with_18456(front):
    front.sql_logins = {"mlflowadmin": PASSWORD}
    uri = backend_store_uri(sql_host=HOST, database="mlflow", user="mlflowadmin", password=PASSWORD + "x")
    with pytest.raises(pyodbc.InterfaceError) as err:   # SQLSTATE 28000
        pyodbc.connect(_odbc_string(uri, front.port), timeout=LOGIN_TIMEOUT)
    assert err.value.args[0] == "28000"
    assert "Login failed for user 'mlflowadmin'. (18456)" in str(err.value)
    assert front.wait_for_login().outcome == "failed 18456"


# -- (d) a token passed by the application ------------------------------------------------------------------
def test_application_token_goes_inline_in_login7(front, standin, identity):
    token = standin.issue_token(front.spn, client_id=identity.client_id)
    encoded = token.encode("utf-16-le")
    conn = pyodbc.connect(connection_string(front), timeout=LOGIN_TIMEOUT,
                          attrs_before={SQL_COPT_SS_ACCESS_TOKEN: struct.pack("<I", len(encoded)) + encoded})
    conn.close()
    login = front.wait_for_login()
    assert (login.fedauth_library, login.fedauth_workflow, login.outcome) == (0x01, None, "accepted")
    assert login.token == token and login.user == ""
    assert "S FEDAUTHINFO" not in _kinds(login)


# -- (e) 40613 while a serverless database resumes --------------------------------------------------------
@pytest.mark.parametrize("keywords", [{}, {"ConnectRetryCount": "3", "ConnectRetryInterval": "1"}],
                         ids=["defaults", "ConnectRetryCount=3"])
@pytest.mark.parametrize("severity, error", [(20, pyodbc.Error), (14, pyodbc.ProgrammingError)])
def test_40613_on_the_initial_login_is_not_retried_by_the_driver(front, keywords, severity, error):
    # Observed with 18.6.2.2: one attempt, the error at once, whatever ConnectRetryCount/Interval
    # say (they govern idle-connection resiliency, not the first login), also with an Azure
    # host name (sql-test.database.windows.net, resolved in a private mount namespace). Class 20
    # (SqlClient#1957's trace) surfaces as SQLSTATE HY000 = pyodbc.Error, class 14 as 42000 =
    # pyodbc.ProgrammingError: a retry must look at the number 40613, not the exception class.
    front.refuse(1, severity=severity)
    with pytest.raises(error) as err:
        pyodbc.connect(connection_string(front, UID="mlflowadmin", PWD="pw", **keywords), timeout=LOGIN_TIMEOUT)
    assert type(err.value) is error
    assert "is not currently available.  Please retry the connection later." in str(err.value)
    assert "(40613)" in str(err.value)
    assert [x.outcome for x in front.logins] == ["refused 40613"]
    pyodbc.connect(connection_string(front, UID="mlflowadmin", PWD="pw"), timeout=LOGIN_TIMEOUT).close()
    assert [x.outcome for x in front.logins] == ["refused 40613", "accepted"]


def test_40613_refuses_a_managed_identity_login_after_its_token(front, standin, identity, container_identity_env):
    front.refuse(1)
    with pytest.raises(pyodbc.Error, match=r"\(40613\)"):
        pyodbc.connect(connection_string(front, Authentication="ActiveDirectoryMsi", UID=identity.client_id),
                       timeout=LOGIN_TIMEOUT)
    login = front.wait_for_login()
    assert login.outcome == "refused 40613" and standin.app.tokens.verify(login.token)
    assert _kinds(login)[-2:] == ["C FEDAUTH_TOKEN", "S ERROR"]
