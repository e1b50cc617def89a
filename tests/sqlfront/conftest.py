"""Fixtures: Microsoft's real ODBC driver on the host, a SQL front, the stand-in and an identity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.standin.conftest import azure, group  # noqa: F401 - fixtures: SDK clients, a group + identity
from tests.standin.fixtures import *  # noqa: F401,F403 - standin, standin_env, arm_kwargs

from . import driver
from .front import SqlFront

REPO = Path(__file__).resolve().parents[2]
# The driver wheel is downloaded once into the work tree's (git-ignored) cache.
CACHE = Path(os.environ.get("ACA_TEST_SQLFRONT_CACHE", REPO / ".cache" / "sqlfront"))
# Driver's own host-name check ignores IP-address SANs (observed: Server=127.0.0.1 with a
# certificate for IP 127.0.0.1 fails "subject name does not match host name"), so clients use a name.
HOST = "localhost"


@pytest.fixture(scope="session")
def odbc_driver():
    """The driver registered in a private odbcinst.ini (ODBCSYSINI); returns its name."""
    etc = driver.install(CACHE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODBCSYSINI", str(etc))
        mp.setenv("ODBCINSTINI", "odbcinst.ini")
        yield driver.DRIVER_NAME


@pytest.fixture
def front(odbc_driver, tmp_path, monkeypatch):
    """A running SqlFront whose CA the driver trusts through SSL_CERT_FILE (the driver's OpenSSL
    honours it: observed), as a bundle of the system CAs plus the front's CA."""
    with SqlFront(names=(HOST,), workdir=str(tmp_path)) as running:
        monkeypatch.setenv("SSL_CERT_FILE", running.ca_bundle(str(tmp_path / "ca-bundle.crt")))
        yield running


@pytest.fixture
def identity(group):
    """A user-assigned identity created through the stand-in's ARM API with the real SDK (the
    stand-in tests' `group` fixture)."""
    return group.identity


@pytest.fixture
def container_identity_env(standin, identity, monkeypatch):
    """The process environment as Container Apps sets it: IDENTITY_ENDPOINT is the stand-in's
    plain-HTTP identity listener, IDENTITY_HEADER its header; no proxy variables."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", standin.identity_http())
    monkeypatch.setenv("IDENTITY_HEADER", standin.app.tokens.identity_header)
    return os.environ["IDENTITY_ENDPOINT"]


def connection_string(front: SqlFront, *, database: str = "mlflow", **keywords: str) -> str:
    parts = {"Driver": "{%s}" % driver.DRIVER_NAME, "Server": f"{HOST},{front.port}", "Database": database,
             "Encrypt": "yes", "TrustServerCertificate": "no", **keywords}
    return ";".join(f"{k}={v}" for k, v in parts.items())
