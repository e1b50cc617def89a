"""`python -m tests.standin` in a subprocess: its exports drive a real client, its control API
answers over HTTP, and --request-log writes redacted JSON lines."""

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.standin import RemoteStandin, faults

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path):
    log = tmp_path / "requests.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "tests.standin", "--request-log", str(log), "--latency", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exports = {}
    try:
        for line in process.stdout:
            if line.startswith("#"):
                break
            name, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
            exports[name] = shlex.split(value)[0]
        yield process, exports, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)      # what Ctrl-C sends
            process.wait(timeout=10)


def test_exports_work_with_a_real_client(served, monkeypatch):
    process, exports, log = served
    assert set(exports) == {"MLFLOW_ACA_ARM_ENDPOINT", "REQUESTS_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
                            "AZURE_SUBSCRIPTION_ID", "HTTPS_PROXY", "NO_PROXY"}
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in exports.items():
        monkeypatch.setenv(name, value)

    import requests
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    # what the product does with a custom cloud: read the metadata, take the audience from it
    arm = os.environ["MLFLOW_ACA_ARM_ENDPOINT"]
    (cloud,) = requests.get(f"{arm}/metadata/endpoints?api-version=2022-09-01", timeout=5).json()
    scopes = [cloud["authentication"]["audiences"][0] + "/.default"]
    kwargs = dict(base_url=cloud["resourceManager"], credential_scopes=scopes, polling_interval=0,
                  retry_backoff_factor=0.01)
    credential = DefaultAzureCredential()
    subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
    client = ResourceManagementClient(credential, subscription, **kwargs)

    remote = RemoteStandin(arm, os.environ["REQUESTS_CA_BUNDLE"])
    remote.add_fault(faults.server_error(r"/resourcegroups/rg-cli$", method="PUT"))
    assert client.resource_groups.create_or_update("rg-cli", {"location": "westeurope"}).name == "rg-cli"
    identity = ManagedServiceIdentityClient(credential, subscription, **kwargs).user_assigned_identities \
        .create_or_update("rg-cli", "id-cli", {"location": "westeurope"})

    assert [r["name"] for r in remote.resources("Microsoft.Resources/resourceGroups")] == ["rg-cli"]
    assert remote.resource(identity.id)["properties"]["clientId"] == identity.client_id
    assert [e["status"] for e in remote.requests("PUT", "/resourcegroups/rg-cli") if e["path"].endswith("rg-cli")] == \
        [500, 201]
    assert remote.info()["subscription_id"] == subscription
    remote.reset()
    assert remote.resources() == []

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["method"], e["status"]) for e in lines if "/resourcegroups/rg-cli" in e["path"]] == \
        [("PUT", 500), ("PUT", 201)]
    token_requests = [e for e in lines if e["path"] == "/msi/token"]
    assert token_requests and all(e["status"] == 200 for e in token_requests)
    assert exports["IDENTITY_HEADER"] not in log.read_text()


def test_help_and_bad_latency():
    help_text = subprocess.run([sys.executable, "-m", "tests.standin", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=30)
    assert help_text.returncode == 0 and "--request-log" in help_text.stdout and "real/100" in help_text.stdout
    bad = subprocess.run([sys.executable, "-m", "tests.standin", "--latency", "fast"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 2 and "--latency" in bad.stderr
