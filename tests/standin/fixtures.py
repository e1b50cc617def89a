"""pytest plugin: a stand-in for the session, reset before each test.

Use it from a conftest with `from tests.standin.fixtures import *` (or list
"tests.standin.fixtures" in the root conftest's `pytest_plugins`).

- `standin`: the running `Standin`, emptied and at zero latency for this test.
- `standin_env`: the process environment pointed at the stand-in (what a client needs, via
  monkeypatch, undone after the test); returns the variables it set.
- `arm_kwargs`: keyword arguments for any azure-mgmt client: base_url, credential_scopes,
  polling_interval=0 and quick retries.
"""

from __future__ import annotations

import os

import pytest

from .handle import Standin

# Variables that would steer DefaultAzureCredential away from the stand-in's identity endpoint.
_FOREIGN_CREDENTIALS = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE",
                        "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "MSI_ENDPOINT", "MSI_SECRET",
                        "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT")


def client_env(standin: Standin, *, proxy: bool = True) -> dict[str, str]:
    """The environment variables a client process needs (same as `python -m tests.standin` prints)."""
    return standin.env(proxy=proxy)


def arm_client_kwargs(standin: Standin) -> dict:
    return {"base_url": standin.url, "credential_scopes": standin.credential_scopes, "polling_interval": 0,
            "retry_backoff_factor": 0.01, "retry_backoff_max": 0.1}


@pytest.fixture(scope="session")
def standin_session():
    with Standin() as running:
        yield running


@pytest.fixture
def standin(standin_session: Standin) -> Standin:
    standin_session.reset()
    standin_session.set_latency(0)
    return standin_session


@pytest.fixture
def standin_env(standin: Standin, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in _FOREIGN_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    env = client_env(standin)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert os.environ["REQUESTS_CA_BUNDLE"] == standin.ca_path
    return env


@pytest.fixture
def arm_kwargs(standin: Standin) -> dict:
    return arm_client_kwargs(standin)
