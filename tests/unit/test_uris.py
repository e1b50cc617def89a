"""The backend store URI, proven the way MLflow consumes it: SQLAlchemy's `create_engine` (which
loads the image's plugin named in the URI and removes it from the URL), then the mssql+pyodbc
dialect's `create_connect_args`, then ODBC's connection-string grammar."""

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from mlflow_aca import uris
from mlflow_aca.cloud import KNOWN_CLOUDS
from mlflow_aca.config import Settings
from tests.values import SUBSCRIPTION

CLIENT_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
HOST = "mlflow-sql-abc123.database.windows.net"

SPECIAL = ["@", ":", "/", "?", "#", "%", "+", ";", "{", "}", "=", "'", '"', " ", "é", "ß", "Ω", "密"]


def parse_odbc(connection_string: str) -> dict[str, str]:
    """ODBC connection-string grammar: `key=value;` pairs; a value wrapped in braces may contain
    ';' and '}' (written '}}'). Keys are case-insensitive."""
    attributes: dict[str, str] = {}
    i, n = 0, len(connection_string)
    while i < n:
        eq = connection_string.index("=", i)
        key = connection_string[i:eq].strip().lower()
        i = eq + 1
        if i < n and connection_string[i] == "{":
            value, i = [], i + 1
            while True:
                if connection_string[i] == "}":
                    if i + 1 < n and connection_string[i + 1] == "}":
                        value.append("}")
                        i += 2
                        continue
                    i += 1
                    break
                value.append(connection_string[i])
                i += 1
            attributes[key] = "".join(value)
            assert i == n or connection_string[i] == ";", "garbage after a braced value"
            i += 1
        else:
            end = connection_string.find(";", i)
            end = n if end == -1 else end
            attributes[key] = connection_string[i:end]
            i = end + 1
    return attributes


@pytest.fixture(autouse=True)
def _plugin_installed(image_plugin):
    """The server image's SQLAlchemy plugin, installed as the image installs it."""


def odbc_attributes(uri: str) -> dict[str, str]:
    assert make_url(uri).drivername == "mssql+pyodbc"
    # As MLflow does (mlflow/store/db/utils.py): create_engine, which resolves `plugin=`; no
    # connection is opened until one is asked for.
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    (connection_string,), _kwargs = engine.dialect.create_connect_args(engine.url)
    return parse_odbc(connection_string)


def test_the_uri_names_the_image_plugin_and_the_driver_never_sees_it():
    uri = uris.backend_store_uri(sql_host=HOST, database="mlflow", user=CLIENT_ID)
    assert make_url(uri).query["plugin"] == "mlflow_aca"
    assert "plugin" not in odbc_attributes(uri)


def test_entra_uri_authenticates_as_the_managed_identity():
    uri = uris.backend_store_uri(sql_host=HOST, database="mlflow", user=CLIENT_ID)
    attrs = odbc_attributes(uri)
    assert attrs == {
        "driver": "ODBC Driver 18 for SQL Server",
        "server": f"{HOST},1433",
        "database": "mlflow",
        "uid": CLIENT_ID,
        "encrypt": "yes",
        "trustservercertificate": "no",
        "authentication": "ActiveDirectoryMsi",
    }
    assert "pwd" not in attrs and "trusted_connection" not in attrs


@pytest.mark.parametrize("char", SPECIAL)
def test_password_survives_every_special_character(char):
    password = f"Pa{char}ss{char}w0rd{char}"
    uri = uris.backend_store_uri(sql_host=HOST, database="mlflow", user="mlflowadmin", password=password)
    url = make_url(uri)
    assert url.password == password and url.username == "mlflowadmin" and url.host == HOST
    attrs = odbc_attributes(uri)
    assert attrs["pwd"] == password
    assert attrs["uid"] == "mlflowadmin"
    assert attrs["server"] == f"{HOST},1433" and attrs["database"] == "mlflow"
    assert attrs["encrypt"] == "yes" and attrs["trustservercertificate"] == "no"
    assert "authentication" not in attrs  # SQL authentication, not Entra


def test_password_with_all_special_characters_at_once():
    password = "".join(SPECIAL) + "{leading"
    attrs = odbc_attributes(uris.backend_store_uri(sql_host=HOST, database="db", user="u", password=password))
    assert attrs["pwd"] == password


@pytest.mark.parametrize("user", ["admin@tenant", "we:ird/user", "ü;}"])
def test_user_survives_special_characters(user):
    attrs = odbc_attributes(uris.backend_store_uri(sql_host=HOST, database="db", user=user, password="x"))
    assert attrs["uid"] == user


def test_database_name_with_spaces_and_dots():
    attrs = odbc_attributes(uris.backend_store_uri(sql_host=HOST, database="ml flow.v2", user=CLIENT_ID))
    assert attrs["database"] == "ml flow.v2"


def test_redaction_hides_the_encoded_password():
    password = "p@ss/w:rd;}"
    uri = uris.backend_store_uri(sql_host=HOST, database="db", user="u", password=password)
    shown = uris.redact_password(uri, password)
    assert make_url(shown).password == "***"
    assert password not in shown and "p%40ss" not in shown


@pytest.mark.parametrize(("cloud", "host_suffix"), [
    ("AzureCloud", "database.windows.net"),
    ("AzureChinaCloud", "database.chinacloudapi.cn"),
    ("AzureUSGovernment", "database.usgovcloudapi.net"),
])
def test_settings_uris_take_suffixes_from_the_cloud(cloud, host_suffix):
    settings = Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION,
                        artifacts_path="/runs/")
    info = KNOWN_CLOUDS[cloud]
    names = settings.names
    attrs = odbc_attributes(settings.backend_store_uri(info, client_id=CLIENT_ID))
    assert attrs["server"] == f"{names.sql_server}.{host_suffix},1433"
    assert attrs["uid"] == CLIENT_ID
    destination = settings.artifacts_destination(info)
    assert destination == (
        f"wasbs://{names.storage_container}@{names.storage_account}.blob.{info.storage_suffix}/runs"
    )


def test_password_auth_settings_use_the_admin_login():
    settings = Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION,
                        sql_auth="password", sql_admin_login="mlflowops")
    uri = settings.backend_store_uri(KNOWN_CLOUDS["AzureCloud"], password="s3cr;t}")
    attrs = odbc_attributes(uri)
    assert (attrs["uid"], attrs["pwd"]) == ("mlflowops", "s3cr;t}")
