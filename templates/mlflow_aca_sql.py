"""Installed into the mlflow-aca server image (never imported by the mlflow-aca CLI itself).

A SQLAlchemy engine plugin, switched on by `plugin=mlflow_aca` in the backend store URI, that
retries a database login Azure SQL refuses for a transient reason. The case it exists for: a
serverless database that auto-paused resumes on the first login, which fails with error 40613
("Database ... is not currently available") for up to about a minute
(learn.microsoft.com/azure/azure-sql/database/serverless-tier-overview). MLflow retries only
while it creates its engine at start-up (mlflow/store/db/utils.py,
create_sqlalchemy_engine_with_retry); with no connection pool (how the app runs when auto-pause
is on) every request opens a connection, and without this the first requests after a pause
fail with HTTP 500. The ODBC driver's ConnectRetryCount restores broken idle connections only
(learn.microsoft.com/sql/connect/odbc/connection-resiliency), not a refused first login.

SQLAlchemy finds the plugin through the `sqlalchemy.plugins` entry point of this distribution
and removes the `plugin` parameter from the URL before the dialect sees it
(sqlalchemy/engine/create.py, create_engine -> URL._instantiate_plugins).

`python -m mlflow_aca_sql grant` (the migration job's `grant` init container) creates the app's
contained database user: see `grant_statement` (Entra authentication) and `password_user_statement`
(SQL authentication).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid

from sqlalchemy import event
from sqlalchemy.engine import CreateEnginePlugin

# Login-time errors Microsoft's own client libraries treat as transient
# (Microsoft.Data.SqlClient, SqlConfigurableRetryFactory.BaselineTransientErrors); lock and
# deadlock errors of that list are statement errors, not login errors, and are left out.
TRANSIENT_ERRORS = frozenset({4060, 4221, 40197, 40501, 40613, 42108, 42109, 49918, 49919, 49920})
# Seconds to wait before each retry: about a minute in all, the time a resume takes. The
# container's environment may set another schedule (comma-separated seconds; empty: no retry).
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0)
DELAYS_VARIABLE = "MLFLOW_ACA_SQL_RETRY_DELAYS"
# pyodbc puts the server's error number in parentheses after its message, e.g.
# "...is not currently available. ... (40613) (SQLDriverConnect)".
_NUMBER = re.compile(r"\((\d{3,5})\)")

log = logging.getLogger("mlflow_aca_sql")


def retry_delays() -> tuple[float, ...]:
    configured = os.environ.get(DELAYS_VARIABLE)
    if configured is None:
        return RETRY_DELAYS
    try:
        return tuple(float(part) for part in configured.split(",") if part.strip())
    except ValueError:
        log.warning("%s=%r is not a list of seconds; using %s", DELAYS_VARIABLE, configured, RETRY_DELAYS)
        return RETRY_DELAYS


def error_numbers(error: BaseException) -> set[int]:
    """The SQL Server error numbers a DBAPI error carries in its text."""
    return {int(number) for number in _NUMBER.findall(" ".join(str(arg) for arg in error.args))}


class AzureSqlRetry(CreateEnginePlugin):
    """Retries a connection whose login fails with a transient Azure SQL error."""

    def __init__(self, url, kwargs):
        super().__init__(url, kwargs)
        self.delays = retry_delays()

    def update_url(self, url):
        return url  # nothing of ours is in the URL besides `plugin`, which SQLAlchemy removes

    def engine_created(self, engine) -> None:
        event.listen(engine, "do_connect", self.connect)

    def connect(self, dialect, connection_record, cargs, cparams):
        dbapi = getattr(dialect, "loaded_dbapi", None) or dialect.dbapi
        for attempt, delay in enumerate((*self.delays, None), start=1):
            try:
                return dialect.connect(*cargs, **cparams)
            except dbapi.Error as error:
                transient = error_numbers(error) & TRANSIENT_ERRORS
                if not transient or delay is None:
                    raise
                log.warning("Azure SQL refused login attempt %d with error %s (transient, e.g. a paused "
                            "database resuming); retrying in %.0f s", attempt, min(transient), delay)
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")


# -- the app's database user (run by the migration job, signed in as the Entra administrator) ----
URI_VARIABLE = "MLFLOW_BACKEND_STORE_URI"
APP_USER_VARIABLE = "MLFLOW_ACA_APP_USER"            # the app identity's name
APP_CLIENT_ID_VARIABLE = "MLFLOW_ACA_APP_CLIENT_ID"  # the app identity's client id
# With SQL authentication: the password of the app's user (set by secretRef, never a plain value);
# when it is set, the user is a contained user with that password instead of an Entra one.
APP_PASSWORD_VARIABLE = "MLFLOW_ACA_APP_PASSWORD"
# What MLflow's server needs on a current schema: rows read and written, no DDL (the schema is
# `mlflow db upgrade`'s, run by the job as the administrator).
APP_ROLES = ("db_datareader", "db_datawriter")
# A user-assigned identity's name (Microsoft.ManagedIdentity's rule, mlflow_aca/naming.py): no
# `]` or `'`, so the name can sit in [brackets] and N'quotes' unescaped; checked again here.
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,127}")
_ROLE_NAME = re.compile(r"db_[a-z_]+")
# The password-mode user: the administrator login's rule (mlflow_aca/config/model.py) plus "_app".
_SQL_USER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
# sys.database_principals.authentication_type 2 = DATABASE: "Contained user with password"
# (learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-database-principals-transact-sql).
_PASSWORD_AUTHENTICATION = 2


def sid_literal(client_id: str) -> str:
    """The database SID of an Entra application (a managed identity is one) as a T-SQL binary
    literal: its client id's 16 bytes in GUID byte order (`uuid.UUID.bytes_le`), the value the
    server's Entra administrator `sid` holds as a GUID string."""
    return "0x" + uuid.UUID(client_id).bytes_le.hex().upper()


def grant_statement(user: str, client_id: str, roles: tuple[str, ...] = APP_ROLES) -> str:
    """One idempotent T-SQL batch: the contained user `user` for the application `client_id`,
    member of `roles` and of nothing else this batch adds.

    `CREATE USER ... WITH SID = <client id bytes>, TYPE = E` names the Entra application by its
    SID, so the server does not look it up in Microsoft Graph. `FROM EXTERNAL PROVIDER` would,
    and when the signed-in administrator is a service principal (the migration identity) that
    needs the server's own identity to hold Graph read permission (Directory Readers), which only
    a tenant administrator can grant (learn.microsoft.com/azure/azure-sql/database/
    authentication-aad-service-principal). The SID form is widely used (e.g.
    gist.github.com/Rookian/8532de7bf142275611390f432e3a1a6a) but NOT documented by Microsoft.

    A user of that name with another SID (the identity was deleted and created again: a new
    client id) is dropped and created again; role membership is added only when missing."""
    if not _USER_NAME.fullmatch(user):
        raise ValueError(f"not a user-assigned identity name: {user!r}")
    if any(not _ROLE_NAME.fullmatch(role) for role in roles):
        raise ValueError(f"not a fixed database role: {roles!r}")
    sid = sid_literal(client_id)
    lines = [
        f"DECLARE @sid varbinary(85) = {sid};",
        f"IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'{user}' AND (sid IS NULL OR sid <> @sid))",
        f"    DROP USER [{user}];",
        f"IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'{user}')",
        f"    CREATE USER [{user}] WITH SID = {sid}, TYPE = E;",
    ]
    return "\n".join(lines + _role_lines(user, roles))


def _role_lines(user: str, roles: tuple[str, ...]) -> list[str]:
    """Add `user` to each of `roles` it is not yet a member of."""
    if any(not _ROLE_NAME.fullmatch(role) for role in roles):
        raise ValueError(f"not a fixed database role: {roles!r}")
    lines: list[str] = []
    for role in roles:
        lines += [
            "IF NOT EXISTS (SELECT 1 FROM sys.database_role_members AS m",
            "    JOIN sys.database_principals AS r ON r.principal_id = m.role_principal_id",
            "    JOIN sys.database_principals AS u ON u.principal_id = m.member_principal_id",
            f"    WHERE r.name = N'{role}' AND u.name = N'{user}')",
            f"    ALTER ROLE [{role}] ADD MEMBER [{user}];",
        ]
    return lines


def password_literal(password: str) -> str:
    """`password` as a T-SQL string literal: in single quotes, each quote doubled (the only
    character a T-SQL string literal escapes)."""
    if not password or len(password) > 128 or "\x00" in password:
        raise ValueError("a SQL password has 1 to 128 characters and no NUL")
    return "'" + password.replace("'", "''") + "'"


def password_user_statement(user: str, password: str, roles: tuple[str, ...] = APP_ROLES) -> str:
    """One idempotent T-SQL batch (SQL authentication): the contained database user `user` with
    `password`, member of `roles` and of nothing else this batch adds.

    `CREATE USER name WITH PASSWORD = 'password'` is a "contained database user with password",
    "always allowed in SQL Database"; `ALTER USER name WITH PASSWORD = 'password'` gives an
    existing one a new password, without its old one for a principal holding ALTER ANY USER (the
    administrator) (learn.microsoft.com/sql/t-sql/statements/create-user-transact-sql and
    alter-user-transact-sql). So a lost copy of the app's password is recovered by a new one, and
    the administrator's is not touched. A user of that name that is not a password user (e.g. left
    by another authentication mode) is dropped first.

    Neither statement takes a variable for the password, so it is written into the batch as a
    quoted literal (`password_literal`). Passing it as a parameter (`EXEC sp_executesql` with
    `?`) would still need the server to splice it into dynamic SQL with the same quoting, one
    level deeper; the password is the tool's own (letters, digits, `-_.~!*`: no quote at all),
    and the batch travels on the encrypted connection like a parameter would."""
    if not _SQL_USER_NAME.fullmatch(user):
        raise ValueError(f"not a plain SQL user name: {user!r}")
    literal = password_literal(password)
    lines = [
        f"IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'{user}'"
        f" AND authentication_type <> {_PASSWORD_AUTHENTICATION})",
        f"    DROP USER [{user}];",
        f"IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'{user}')",
        f"    ALTER USER [{user}] WITH PASSWORD = {literal};",
        "ELSE",
        f"    CREATE USER [{user}] WITH PASSWORD = {literal};",
    ]
    return "\n".join(lines + _role_lines(user, roles))


def odbc_connect_args(uri: str) -> tuple[list, dict]:
    """What SQLAlchemy's dialect for `uri` (mssql+pyodbc) hands pyodbc.connect: the same ODBC
    connection string MLflow's engine uses. The `plugin` parameter is dropped first, as
    create_engine drops it (sqlalchemy/engine/create.py)."""
    from sqlalchemy.engine import make_url

    url = make_url(uri).difference_update_query(["plugin", "plugins"])
    return url.get_dialect()().create_connect_args(url)


def grant(uri: str, user: str, client_id: str | None = None, delays: tuple[float, ...] | None = None,
          *, password: str | None = None) -> None:
    """Sign in with `uri` (the administrator) and run `grant_statement` (Entra: the application
    `client_id`) or, given `password`, `password_user_statement`, retrying a login refused for a
    transient reason (a resuming serverless database) as the engine plugin does."""
    import pyodbc

    # Built first: a bad name is refused before any connection.
    statement = password_user_statement(user, password) if password is not None \
        else grant_statement(user, str(client_id))
    args, kwargs = odbc_connect_args(uri)
    schedule = retry_delays() if delays is None else delays
    for attempt, delay in enumerate((*schedule, None), start=1):
        try:
            # Only pyodbc's timeout bounds a login (tests/sqlfront/test_driver_login.py, observed).
            connection = pyodbc.connect(*args, autocommit=True, timeout=30, **kwargs)
            break
        except pyodbc.Error as error:
            transient = error_numbers(error) & TRANSIENT_ERRORS
            if not transient or delay is None:
                raise
            log.warning("Azure SQL refused login attempt %d with error %s (transient); retrying in %.0f s",
                        attempt, min(transient), delay)
            time.sleep(delay)
    try:
        connection.execute(statement)
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    """`python -m mlflow_aca_sql grant`: everything comes from the environment (no URI in any
    process's arguments)."""
    if argv != ["grant"]:
        print("usage: python -m mlflow_aca_sql grant  (reads MLFLOW_BACKEND_STORE_URI, "
              f"{APP_USER_VARIABLE}, and {APP_CLIENT_ID_VARIABLE} or {APP_PASSWORD_VARIABLE})", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    user, password = os.environ[APP_USER_VARIABLE], os.environ.get(APP_PASSWORD_VARIABLE)
    if password is not None:
        grant(os.environ[URI_VARIABLE], user, password=password)
        log.info("database user [%s] (password set) is a member of %s", user, ", ".join(APP_ROLES))
        return 0
    client_id = os.environ[APP_CLIENT_ID_VARIABLE]
    grant(os.environ[URI_VARIABLE], user, client_id)
    log.info("database user [%s] (client id %s) is a member of %s", user, client_id, ", ".join(APP_ROLES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
