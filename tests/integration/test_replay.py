"""The deployed container app, replayed with Docker as Container Apps would run it, driven by the
real MLflow client through the app's FQDN.

`provision` + `deploy --image <local registry>/...` against the Azure stand-in; the app the
stand-in then holds is run from the registry with its own command, args, environment (the
backend URI arrives by secretRef: sql_auth = password), target port and probes; Azurite and
PostgreSQL stand in for Blob and Azure SQL (replay.substitute_for_local, the only departure).
The stand-in's HTTPS proxy terminates TLS for the FQDN and relays to the container's published
port, so every request carries the Host header ACA's ingress would pass on, with no test-only
header tricks: the MLflow client and the browser-like calls reach https://<fqdn> through
`HTTPS_PROXY`, configured by environment variables only.

The negative controls replay the same spec less one variable (or with the artifact container
missing) and must fail the way users would see it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests import services
from tests.integration import replay
from tests.integration.conftest import Deployment

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ARTIFACTS_PATH = "team-a/tracking"


@dataclass
class Deployed:
    deployment: Deployment
    app: dict[str, Any]
    secrets: dict[str, str] = field(repr=False)  # pytest shows fixture values in tracebacks
    blob_container: str
    database: str
    postgres: services.Postgres
    azurite: services.Azurite
    postgres_driver: Any

    @property
    def fqdn(self) -> str:
        return self.app["properties"]["configuration"]["ingress"]["fqdn"]

    @functools.cached_property
    def scope_resource(self) -> str:
        """The server's token audience, as `mlflow-aca env` prints it (asked once: the
        registration stays the same for the module)."""
        return replay.signed_in_environ(self.deployment)["MLFLOW_ACA_AUTH_SCOPE"].removesuffix("/.default")

    @property
    def origin(self) -> str:
        return f"https://{self.fqdn}"

    def run(self) -> replay.ContainerRun:
        """The app's container with the replay's substitutions: what the tests start."""
        return replay.substitute_for_local(
            replay.app_run(self.app, self.secrets), azurite=self.azurite, postgres_driver=self.postgres_driver,
            database_url=self.postgres.url(self.database, driver="psycopg", for_container=True))


@pytest.fixture(scope="module")
def deployed(standin_session, tmp_path_factory, replay_image, postgres_driver):
    """One provision + deploy for the module (the stand-in is not reset between its tests)."""
    azurite, postgres = services.require_azurite(), services.require_postgres()
    deployment = Deployment.with_image(standin_session, tmp_path_factory.mktemp("replay"), replay_image, {
        "sql_auth": "password",  # the backend URI reaches the app by secretRef
        "storage_container_name": f"replay-{uuid.uuid4().hex[:12]}",  # Azurite is shared: a name of our own
        "artifacts_path": ARTIFACTS_PATH,
    })
    app = deployment.one("Microsoft.App/containerApps")
    (container,) = deployment.resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    with replay.fresh_database(postgres) as database:
        yield Deployed(deployment, app, replay.list_secrets(deployment, app), container["name"], database,
                       postgres, azurite, postgres_driver)
    with contextlib.suppress(Exception):
        replay.blob_container(azurite, container["name"]).delete_container()


@pytest.fixture
def ingress(deployed, monkeypatch):
    """This process reaches the app on its FQDN through the stand-in's proxy, as a client would,
    signed in as the operator."""
    for name, value in replay.ingress_environ(deployed.deployment, deployed.fqdn).items():
        monkeypatch.setenv(name, value)
    return deployed


def browser(deployed: Deployed) -> Any:
    """A browser's session: sent to sign in by the app, signed in at Entra (the stand-in's
    authorize endpoint answers with its form_post page), back with a session cookie."""
    import html

    import requests

    session = requests.Session()
    session.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    page = navigate(session, "GET", deployed.origin + "/")
    assert page.url.startswith(deployed.deployment.standin.url), page.url  # at Entra's sign-in
    form = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    assert form and "id_token" in fields, page.text[:500]
    back = navigate(session, "POST", html.unescape(form.group(1)),
                    data={k: html.unescape(v) for k, v in fields.items()})
    assert back.status_code == 200 and back.url == deployed.origin + "/", (back.status_code, back.url)
    return session


def navigate(session: Any, method: str, url: str, **kwargs: Any) -> Any:
    """Follow redirects one request at a time, as a browser does. (requests' own redirect
    handling keeps the first hop's proxy for the next host even when NO_PROXY lists it.)"""
    from urllib.parse import urljoin

    for _ in range(10):
        response = session.request(method, url, allow_redirects=False, timeout=60, **kwargs)
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        url = urljoin(url, response.headers["Location"])
        method, kwargs = ("GET", {}) if response.status_code in (301, 302, 303) else (method, kwargs)
    raise AssertionError(f"too many redirects, last {url}")


@contextlib.contextmanager
def serving(deployed: Deployed, engine: Any, run: replay.ContainerRun):
    """Run the container and point the app's FQDN at it."""
    with replay.running_app(engine, run) as app:
        deployed.deployment.standin.set_app_endpoint(deployed.app["id"], backend=app.backend)
        yield app


def get(deployed: Deployed, path: str, *, session: Any = None, **kwargs):
    import requests

    return (session or requests).get(deployed.origin + path, timeout=60, **kwargs)


def ui_post(deployed: Deployed, *, origin: str | None, session: Any) -> Any:
    """What the UI's own page sends, signed in: a POST to /ajax-api/ with the page's Origin."""
    headers = {"Origin": origin} if origin else {}
    return session.post(f"{deployed.origin}/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 50},
                        headers=headers, timeout=60)


def test_the_deployed_spec_runs_and_serves_the_mlflow_client_the_ui_and_blob_artifacts(
        ingress, replay_engine, tmp_path):
    from mlflow import MlflowClient

    deployed = ingress
    blobs = replay.ensure_blob_container(deployed.azurite, deployed.blob_container, exists=True)
    spec = deployed.app["properties"]["template"]["containers"][0]
    assert any("secretRef" in var for var in spec["env"]), "the replay should resolve a secretRef"

    with serving(deployed, replay_engine, deployed.run()) as app:
        assert [kind for kind, _, _ in app.probes] == ["Startup", "Readiness", "Liveness"]
        client = MlflowClient()
        experiment_id = client.create_experiment(f"replay-{uuid.uuid4().hex[:8]}")
        run_id = client.create_run(experiment_id).info.run_id
        client.log_param(run_id, "alpha", "0.5")
        for step, value in enumerate([0.9, 0.5, 0.25]):
            client.log_metric(run_id, "rmse", value, step=step)
        notes = tmp_path / "notes.txt"
        notes.write_text("replayed on Azurite\n")
        client.log_artifact(run_id, str(notes), artifact_path="reports")
        client.set_terminated(run_id)

        run = client.get_run(run_id)
        assert run.data.params == {"alpha": "0.5"} and run.info.status == "FINISHED"
        assert [m.value for m in client.get_metric_history(run_id, "rmse")] == [0.9, 0.5, 0.25]
        assert [a.path for a in client.list_artifacts(run_id, "reports")] == ["reports/notes.txt"]
        downloaded = client.download_artifacts(run_id, "reports/notes.txt", str(tmp_path / "back"))
        assert open(downloaded).read() == "replayed on Azurite\n"

        # The artifact is a blob under the configured container and path; the run is in PostgreSQL.
        blob = f"{ARTIFACTS_PATH}/{experiment_id}/{run_id}/artifacts/reports/notes.txt"
        stored = [b.name for b in blobs.list_blobs(name_starts_with=f"{ARTIFACTS_PATH}/{experiment_id}/")]
        assert stored == [blob], f"blobs in {deployed.blob_container}: {stored}\n--- server log ---\n{app.logs()}"
        assert blobs.download_blob(blob).readall() == b"replayed on Azurite\n"
        assert replay.query(deployed.postgres, deployed.database,
                            "SELECT key, value FROM params WHERE run_uuid = %s", run_id) == [("alpha", "0.5")]

        # The UI, after sign-in: its page and assets load, and its own POSTs (with its origin)
        # are accepted.
        signed_in = browser(deployed)
        page = get(deployed, "/", session=signed_in)
        assert page.status_code == 200 and "<title>MLflow" in page.text, page.text[:300]
        script = re.search(r'src="\.?/?(static-files/[^"]+\.js)"', page.text)
        assert script, page.text[:500]
        assert get(deployed, "/" + script.group(1), session=signed_in).status_code == 200
        searched = ui_post(deployed, origin=deployed.origin, session=signed_in)
        assert searched.status_code == 200, searched.text
        assert experiment_id in [e["experiment_id"] for e in searched.json()["experiments"]]

        # Light, as sized for 2 GiB (notes/mlflow.md): MLflow read one worker and no job runner;
        # and no connection pool, so the serverless database can pause (auto-pause is on by default).
        commands = [row[-1] for row in app.container.top()["Processes"]]
        assert any("uvicorn" in c and "--workers 1 " in c for c in commands), commands
        assert not any("huey" in c for c in commands), commands
        assert "'poolclass': <class 'sqlalchemy.pool.impl.NullPool'>" in app.logs(tail="all")


def browser_with_token(deployed: Deployed) -> Any:
    """A client session with the operator's token for the server's scope (MLflow itself may then
    still refuse: what the negative controls below are about)."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {scope_token(deployed)}"
    return session


def scope_token(deployed: Deployed, **kwargs: Any) -> str:
    return deployed.deployment.standin.issue_token(resource=deployed.scope_resource, **kwargs)


def test_without_allowed_hosts_the_probes_pass_but_every_call_gets_403(ingress, replay_engine):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    deployed = ingress
    with serving(deployed, replay_engine, deployed.run().without("MLFLOW_SERVER_ALLOWED_HOSTS")):
        assert get(deployed, "/health").status_code == 200  # ACA would call this revision healthy
        signed_in = browser_with_token(deployed)
        denied = get(deployed, "/api/2.0/mlflow/experiments/search", params={"max_results": 1}, session=signed_in)
        assert denied.status_code == 403 and "Invalid Host header" in denied.text
        assert get(deployed, "/", session=signed_in).status_code == 403
        with pytest.raises(MlflowException, match="403"):
            MlflowClient().search_experiments()


def test_without_the_cors_origin_the_ui_post_gets_403(ingress, replay_engine):
    deployed = ingress
    with serving(deployed, replay_engine, deployed.run().without("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS")):
        signed_in = browser_with_token(deployed)
        blocked = ui_post(deployed, origin=deployed.origin, session=signed_in)
        assert blocked.status_code == 403 and "Cross-origin request blocked" in blocked.text
        assert ui_post(deployed, origin=None, session=signed_in).status_code == 200  # only the origin check refused it


def test_with_the_artifact_container_missing_the_upload_fails(ingress, replay_engine, tmp_path, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    deployed = ingress
    replay.ensure_blob_container(deployed.azurite, deployed.blob_container, exists=False)
    with serving(deployed, replay_engine, deployed.run()):
        client = MlflowClient()
        run_id = client.create_run(client.create_experiment(f"no-container-{uuid.uuid4().hex[:8]}")).info.run_id
        client.log_param(run_id, "alpha", "0.5")  # the database side works
        notes = tmp_path / "notes.txt"
        notes.write_text("first try\n")
        with pytest.raises(MlflowException, match="500 error"):
            client.log_artifact(run_id, str(notes))
        assert not replay.blob_container(deployed.azurite, deployed.blob_container).exists()  # MLflow made none

        # The same server, once the container exists: the upload goes through. (On a new client
        # session: the failed upload's connection may be closing, and the stand-in's proxy ties
        # the client's tunnel to the server's connection, which ACA's ingress does not.)
        blobs = replay.ensure_blob_container(deployed.azurite, deployed.blob_container, exists=True)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # other settings, another session
        client.log_artifact(run_id, str(notes))
        assert [b.name for b in blobs.list_blobs(name_starts_with=f"{ARTIFACTS_PATH}/")] == [
            f"{ARTIFACTS_PATH}/{client.get_run(run_id).info.experiment_id}/{run_id}/artifacts/notes.txt"]


# -- Entra sign-in in front of the replayed server (issue 10) ------------------------------------------
def auth_config_path(deployed: Deployed) -> str:
    return deployed.app["id"].split(deployed.deployment.subscription_id, 1)[1] + "/authConfigs/current"


def test_without_a_valid_token_nothing_reaches_mlflow(ingress, replay_engine, monkeypatch):
    """No token, another audience, expired, forged: refused by the sign-in layer; the probes'
    /health still answers. Then the negative control: the same requests against a layer weakened
    to let anonymous calls through do reach MLflow — so these checks can fail."""
    import requests
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    deployed = ingress
    api = "/api/2.0/mlflow/experiments/search?max_results=1"
    standin = deployed.deployment.standin
    with serving(deployed, replay_engine, deployed.run()):
        assert get(deployed, "/health").status_code == 200
        navigation = get(deployed, "/", allow_redirects=False, headers={"Accept": "text/html"})
        assert navigation.status_code == 302 and "/.auth/login/aad" in navigation.headers["Location"]
        assert get(deployed, api).status_code == 401          # an API call without a token
        for token in (standin.issue_token(),                                # ARM's audience
                      scope_token(deployed, lifetime=-60),                  # expired
                      scope_token(deployed)[:-4] + "AAAA"):                 # signature edited
            refused = get(deployed, api, headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 401, refused.text
            assert refused.headers["WWW-Authenticate"].startswith("Bearer"), refused.headers
        assert get(deployed, api, headers={"Authorization": f"Bearer {scope_token(deployed)}"}).status_code == 200

        monkeypatch.delenv("MLFLOW_TRACKING_AUTH")          # the client without the plugin
        with pytest.raises(MlflowException):
            MlflowClient().search_experiments()

        weakened = deployed.deployment.arm("GET", f"{auth_config_path(deployed)}?api-version=2025-01-01")
        weakened["properties"]["globalValidation"]["unauthenticatedClientAction"] = "AllowAnonymous"
        deployed.deployment.arm("PUT", f"{auth_config_path(deployed)}?api-version=2025-01-01", weakened)
        try:
            assert MlflowClient().search_experiments() is not None  # the control: now it gets through
            assert requests.get(deployed.origin + api, timeout=60).status_code == 200
            assert get(deployed, "/", headers={"Accept": "text/html"}).status_code == 200
        finally:
            # A rerun converges the layer back: deploy repairs a weakened sign-in.
            result = deployed.deployment.ok("deploy", "--image", deployed.app["properties"]["template"]
                                            ["containers"][0]["image"])
            app_row = next(r for r in result["resources"] if r["key"] == "app")
            assert "sign-in" in app_row["detail"], app_row
        with pytest.raises(MlflowException):
            MlflowClient().search_experiments()


LONG_RUN = """
import sys, time
from mlflow import MlflowClient
client = MlflowClient()
run_id = client.create_run(client.create_experiment(sys.argv[1])).info.run_id
for step in range(3):
    client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    time.sleep(3.5)   # past the token's lifetime: the next call needs a new one
print([m.step for m in client.get_metric_history(run_id, "loss")])
"""


def test_a_run_longer_than_its_token_keeps_logging(ingress, replay_engine):
    """A fresh client process (its token cache empty) with tokens that live 3 s: every call
    after the first needs a new token, and the plugin gets it without the run noticing."""
    deployed = ingress
    standin = deployed.deployment.standin
    before = len(standin.identity_requests())
    standin.set_token_lifetime(3)
    try:
        with serving(deployed, replay_engine, deployed.run()):
            done = client_process(LONG_RUN, f"long-{uuid.uuid4().hex[:8]}")
    finally:
        standin.set_token_lifetime(24 * 3600)
    assert done.returncode == 0 and done.stdout.strip() == "[0, 1, 2]", done.stderr[-3000:]
    scope = deployed.scope_resource
    asked = [r for r in standin.identity_requests()[before:] if r["query"].get("resource") == scope]
    assert len(asked) >= 3 and all(r["status"] == 200 for r in asked), asked  # renewed, not once
    assert len(asked) < 10, asked   # and not once per request either


SEARCH = "from mlflow import MlflowClient; print(len(MlflowClient().search_experiments()))"


def client_process(script: str, *args: str, **env: str) -> Any:
    """The MLflow client in a fresh process (its own credential and token cache), in this
    test's environment (the ingress and sign-in variables) plus `env`."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", script, *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=180)


def test_only_allowed_principals_get_in(ingress, replay_engine):
    """auth_allowed_principals = the app's own managed identity: Entra refuses the operator a
    token, the layer refuses a token forged for the operator, the identity itself gets through."""
    deployed = ingress
    deployment = deployed.deployment
    identity = next(i for i in deployment.resources("Microsoft.ManagedIdentity/userAssignedIdentities")
                    if i["name"] == f"{deployment.settings['name']}-id")["properties"]   # the app's
    image = deployed.app["properties"]["template"]["containers"][0]["image"]
    deployment.write_config(auth_allowed_principals=[identity["principalId"]])
    try:
        deployment.ok("deploy", "--image", image)
        with serving(deployed, replay_engine, deployed.run()):
            operator = client_process(SEARCH)
            assert operator.returncode != 0 and "AADSTS501051" in operator.stderr, operator.stderr[-2000:]
            assert "auth_allowed_principals" in operator.stderr       # the plugin's hint
            forged = get(deployed, "/api/2.0/mlflow/experiments/search?max_results=1",
                         headers={"Authorization": f"Bearer {scope_token(deployed)}"})
            assert forged.status_code == 403, forged.text  # the layer: not an allowed principal
            allowed = client_process(SEARCH, AZURE_CLIENT_ID=identity["clientId"])
            assert allowed.returncode == 0, allowed.stderr[-2000:]
    finally:
        deployment.settings.pop("auth_allowed_principals")
        deployment.write_config()
        deployment.ok("deploy", "--image", image)
