"""The whole scenario against a real Azure subscription.

Skipped unless LIVE_AZURE_SUBSCRIPTION_ID is set; credentials are whatever
DefaultAzureCredential finds (az login, a service principal's AZURE_CLIENT_ID/AZURE_TENANT_ID/
AZURE_CLIENT_SECRET, workload identity). Optional: LIVE_AZURE_LOCATION (default westeurope),
LIVE_DEPLOYMENT_NAME (default mlflow-live-<random>). It creates billable resources for about
half an hour and always ends with `teardown --delete-data --yes`.

    LIVE_AZURE_SUBSCRIPTION_ID=... scripts/test.sh tests/live -m live -s
"""

import json
import os
import secrets
import subprocess
import sys

import pytest

SUBSCRIPTION = os.environ.get("LIVE_AZURE_SUBSCRIPTION_ID")
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not SUBSCRIPTION, reason="set LIVE_AZURE_SUBSCRIPTION_ID to run against a real subscription"),
]


def cli(directory, *args, timeout=3600):
    env = {**os.environ, "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION or ""}
    completed = subprocess.run([sys.executable, "-m", "mlflow_aca", *args, "--json"], cwd=directory, env=env,
                               capture_output=True, text=True, timeout=timeout)
    return completed.returncode, json.loads(completed.stdout or "{}"), completed.stderr


@pytest.fixture(scope="module")
def live_deployment(tmp_path_factory):
    directory = tmp_path_factory.mktemp("live")
    name = os.environ.get("LIVE_DEPLOYMENT_NAME") or f"mlflow-live-{secrets.token_hex(3)}"
    location = os.environ.get("LIVE_AZURE_LOCATION", "westeurope")
    code, _doc, err = cli(directory, "init", "--name", name, "--location", location, "--subscription", SUBSCRIPTION)
    assert code == 0, err
    try:
        yield directory
    finally:
        code, doc, err = cli(directory, "teardown", "--delete-data", "--yes")
        assert code == 0, (doc, err)


def test_up_status_client_teardown_and_back(live_deployment):
    code, doc, err = cli(live_deployment, "up")
    assert code == 0, (doc, err)
    url = doc["data"]["url"]

    code, doc, err = cli(live_deployment, "status")
    assert code == 0 and doc["data"]["healthy"], (doc, err)

    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(url)
    experiment = mlflow.set_experiment("mlflow-aca-live")
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
        mlflow.log_metric("m", 0.5)
        mlflow.log_text("hello", "note.txt")
    client = MlflowClient(url)
    assert client.get_run(run.info.run_id).data.params == {"p": "1"}

    # Compute goes, data stays: the same run comes back with the next deploy.
    code, doc, err = cli(live_deployment, "teardown")
    assert code == 0, (doc, err)
    code, doc, err = cli(live_deployment, "up")
    assert code == 0, (doc, err)
    client = MlflowClient(doc["data"]["url"])
    assert client.get_experiment(experiment.experiment_id).name == "mlflow-aca-live"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
