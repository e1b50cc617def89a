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
"""

from __future__ import annotations

import logging
import os
import re
import time

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
