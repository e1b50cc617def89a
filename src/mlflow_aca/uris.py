"""The two URIs MLflow is started with: the backend store (Azure SQL through pyodbc) and the
artifacts destination (Blob storage).

The backend URI is parsed by SQLAlchemy (`make_url`), whose user and password fields are
percent-decoded, and then turned into an ODBC connection string by the mssql+pyodbc dialect.
Percent-encoding every byte outside the unreserved set is what lets any character in a
password survive both steps; the dialect itself braces values containing ';' or '}'.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from mlflow_aca.image_files import PLUGIN_NAME

ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
SQL_PORT = 1433
REDACTED = "***"


def backend_store_uri(
    *,
    sql_host: str,
    database: str,
    user: str,
    password: str | None = None,
) -> str:
    """`mssql+pyodbc://` URI for Azure SQL.

    Without a password the connection authenticates as the managed identity whose client id is
    `user` (`authentication=ActiveDirectoryMsi`; lowercase, because SQLAlchemy treats a
    capitalised `Authentication` differently and would add `Trusted_Connection=Yes`). With a
    password it is SQL authentication.

    `plugin=mlflow_aca` loads the image's SQLAlchemy plugin (image_files.py), which retries
    logins refused while a paused serverless database resumes; SQLAlchemy removes the parameter
    before the dialect builds the ODBC connection string.
    """
    query = {
        "driver": ODBC_DRIVER,
        "Encrypt": "yes",
        "TrustServerCertificate": "no",
        "plugin": PLUGIN_NAME,
    }
    if password is None:
        query["authentication"] = "ActiveDirectoryMsi"
    credentials = _quote(user) + (f":{_quote(password)}" if password is not None else "")
    return (
        f"mssql+pyodbc://{credentials}@{sql_host}:{SQL_PORT}/{_quote(database)}"
        f"?{urlencode(query)}"
    )


def redact_password(uri: str, password: str | None) -> str:
    """The URI with its (encoded) password replaced, for display."""
    if not password:
        return uri
    return uri.replace(f":{_quote(password)}@", f":{REDACTED}@")


def artifacts_destination(*, container: str, blob_host: str, path: str = "") -> str:
    """`wasbs://<container>@<account>.blob.<suffix>/<path>` as MLflow's Azure repository parses it."""
    return f"wasbs://{container}@{blob_host}/{path.strip('/')}"


def _quote(value: str) -> str:
    return quote(value, safe="")
