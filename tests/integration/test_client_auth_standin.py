"""`MLFLOW_TRACKING_AUTH=mlflow-aca` end to end on the client side: MLflow's own registry loads the
installed entry point, the real DefaultAzureCredential gets its tokens from the stand-in's identity
endpoint, and MLflow's own request paths (REST and the artifact proxy) carry them to a small local
server that records every Authorization header and checks it with the stand-in's key."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.standin.handle import Standin

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


class Recorder:
    """An HTTP server answering `{}` to everything, recording what it received; tokens in
    `refuse` get a 401 (as Easy Auth answers a token it does not accept)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.refuse: set[str] = set()
        self.refuse_all = False
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def tokens(self) -> list[str | None]:
        return [r["token"] for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(recorder: Recorder) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            received_at = time.time()
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while (size := int(self.rfile.readline().strip(), 16)) > 0:
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            header = self.headers.get("Authorization") or ""
            token = header[len("Bearer "):] if header.startswith("Bearer ") else None
            with recorder.lock:
                refused = recorder.refuse_all or token in recorder.refuse
                recorder.received.append({"method": self.command, "path": self.path, "token": token,
                                          "at": received_at, "body": body, "status": 401 if refused else 200})
            answer = b'{"error_code": "UNAUTHENTICATED"}' if refused else b"{}"
            self.send_response(401 if refused else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    running = Recorder()
    yield running
    running.close()


@pytest.fixture
def client(standin, standin_env, monkeypatch) -> dict[str, str]:
    """The client's settings for a deployment's application registered in the stand-in's directory
    (Entra issues tokens only for a resource with a service principal there). A new application id
    per test, so each test starts with an empty token cache (the provider keeps one per scope and
    process)."""
    app_id = standin.register_application("mlflow-client-test", identifier_uris=["api://{appId}"])["appId"]
    env = {"MLFLOW_TRACKING_AUTH": "mlflow-aca", "MLFLOW_ACA_AUTH_SCOPE": f"api://{app_id}/.default",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**env, "resource": f"api://{app_id}"}


def rest_call(url: str, path: str = "/api/2.0/mlflow/experiments/search", **kwargs) -> requests.Response:
    """A request the way MLflow's REST store makes it (credentials from the environment)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    return http_request(get_default_host_creds(url), path, kwargs.pop("method", "GET"), **kwargs)


def artifact_repo(url: str):
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    return HttpArtifactRepository(f"{url}{ARTIFACTS}/0/run1/artifacts")


def check(standin: Standin, token: str | None, resource: str, at: float) -> dict:
    assert token, "no bearer token sent"
    claims = standin.app.tokens.verify(token)
    assert claims is not None, "not a token the stand-in issued"
    assert claims["aud"] == resource
    assert claims["tid"] == standin.tenant_id
    assert claims["nbf"] <= at < claims["exp"], "token not valid when it arrived"
    return claims


def token_requests(standin: Standin, resource: str) -> list[dict]:
    return [r for r in standin.identity_requests() if r["query"].get("resource") == resource]


# --- tests ----------------------------------------------------------------------------------------
def test_entry_point_is_registered_with_mlflow():
    from mlflow.tracking.request_auth.registry import _request_auth_provider_registry

    names = [provider.get_name() for provider in _request_auth_provider_registry]
    assert "mlflow-aca" in names


def test_rest_and_artifact_requests_carry_one_reused_token(standin, client, recorder, tmp_path):
    from mlflow.tracking.request_auth.registry import fetch_auth

    assert type(fetch_auth("mlflow-aca")).__module__ == "mlflow_aca.client_auth"
    for _ in range(3):
        assert rest_call(recorder.url).status_code == 200
    upload = tmp_path / "model.txt"
    upload.write_bytes(b"weights" * 1000)
    repo = artifact_repo(recorder.url)
    repo.log_artifact(str(upload), "models")
    repo.list_artifacts()
    repo._download_file("models/model.txt", str(tmp_path / "back.txt"))

    kinds = [(r["method"], r["path"].split("?")[0]) for r in recorder.received]
    assert kinds[3:] == [("PUT", f"{ARTIFACTS}/0/run1/artifacts/models/model.txt"), ("GET", ARTIFACTS),
                         ("GET", f"{ARTIFACTS}/0/run1/artifacts/models/model.txt")]
    assert recorder.received[3]["body"] == upload.read_bytes()
    tokens = recorder.tokens()
    assert len(set(tokens)) == 1, "one token for every request"
    for r in recorder.received:
        check(standin, r["token"], client["resource"], r["at"])
    assert len(token_requests(standin, client["resource"])) == 1, "the identity endpoint asked once"


def test_new_token_after_the_first_expires(standin, client, recorder):
    standin.set_token_lifetime(6)
    rest_call(recorder.url)
    rest_call(recorder.url)
    first = standin.app.tokens.verify(recorder.tokens()[0])
    assert recorder.tokens()[1] == recorder.tokens()[0], "reused while young"
    time.sleep(max(0.0, first["exp"] - time.time()) + 0.5)
    rest_call(recorder.url)
    later = recorder.received[-1]
    assert later["token"] != recorder.tokens()[0]
    assert later["at"] > first["exp"]
    check(standin, later["token"], client["resource"], later["at"])
    assert len(token_requests(standin, client["resource"])) == 2


def test_401_to_a_cached_token_gets_a_new_token_and_resends_the_upload_once(standin, client, recorder, tmp_path):
    # Under 5 minutes of life MSAL's cache no longer serves the token (msal/managed_identity.py),
    # so a renewal asks the endpoint; our cache still reuses it for half of that.
    standin.set_token_lifetime(120)
    rest_call(recorder.url)
    cached = recorder.tokens()[0]
    recorder.refuse.add(cached)
    # The stand-in's tokens carry no unique id (Entra's carry `uti`): one issued in the same second
    # with the same claims is the same string, and the provider rightly does not resend with it.
    time.sleep(max(0.0, standin.app.tokens.verify(cached)["iat"] + 1.05 - time.time()))
    upload = tmp_path / "big.bin"
    upload.write_bytes(os.urandom(300_000))
    artifact_repo(recorder.url).log_artifact(str(upload))

    puts = [r for r in recorder.received if r["method"] == "PUT"]
    assert [r["status"] for r in puts] == [401, 200]
    assert puts[0]["token"] == cached and puts[1]["token"] != cached
    assert puts[1]["body"] == upload.read_bytes(), "the file was sent again from its start"
    check(standin, puts[1]["token"], client["resource"], puts[1]["at"])
    rest_call(recorder.url)
    assert recorder.tokens()[-1] == puts[1]["token"], "the new token is the cached one now"


def test_401_is_final_for_a_fresh_token_and_for_a_body_that_cannot_be_resent(standin, client, recorder):
    from mlflow.tracking.request_auth.registry import fetch_auth

    recorder.refuse_all = True
    assert rest_call(recorder.url).status_code == 401  # fetched for this request: no retry
    assert len(recorder.received) == 1
    response = requests.put(recorder.url + "/stream", data=iter([b"a", b"b"]), auth=fetch_auth("mlflow-aca"))
    assert response.status_code == 401
    assert len(recorder.received) == 2  # a generator body is read once: not resent
    assert len(token_requests(standin, client["resource"])) == 1


def test_identity_entra_refuses_gets_the_hint_and_entra_s_reason(standin, standin_env, recorder, monkeypatch):
    """An application that requires role assignments and none for the operator: Entra refuses the
    token (AADSTS501051), and MLflow's error says what to do and why, with no token in it."""
    app_id = standin.register_application("mlflow-locked", identifier_uris=["api://{appId}"],
                                          assignment_required=True)["appId"]
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "mlflow-aca")
    monkeypatch.setenv("MLFLOW_ACA_AUTH_SCOPE", f"api://{app_id}/.default")
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as raised:
        rest_call(recorder.url)
    message = raised.value.message
    assert message.splitlines()[0].startswith(
        f"API request to {recorder.url}/api/2.0/mlflow/experiments/search failed with exception "
        f"mlflow-aca could not get a token for api://{app_id}/.default: sign in with `az login`")
    assert "auth_allowed_principals" in message.splitlines()[0]
    assert "AADSTS501051" in message
    assert "eyJ" not in message and standin_env["IDENTITY_HEADER"] not in message
    assert recorder.received == []


def test_scope_errors_and_no_credential_reach_the_user_as_one_clear_line(standin, recorder, tmp_path):
    """A real MlflowClient in a fresh process: no credential at all (no identity endpoint, no az,
    empty home), then a missing scope."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "MLFLOW_", "IMDS_"))}
    env.update(HOME=str(tmp_path), PATH=str(Path(sys.executable).parent) + ":/usr/bin:/bin",
               MLFLOW_TRACKING_URI=recorder.url, MLFLOW_TRACKING_AUTH="mlflow-aca",
               MLFLOW_ACA_AUTH_SCOPE=f"api://{uuid.uuid4()}/.default", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
               # No Azure metadata service here: the managed-identity probe of 169.254.169.254 fails fast.
               AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:9")
    script = "import mlflow\nmlflow.MlflowClient().search_experiments()\n"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    last = [line for line in result.stderr.splitlines() if line.startswith("mlflow.exceptions.MlflowException")]
    assert len(last) == 1, result.stderr
    assert "failed with exception mlflow-aca could not get a token for api://" in last[0]
    assert "sign in with `az login`, or set AZURE_CLIENT_ID" in last[0]
    assert "DefaultAzureCredential failed to retrieve a token" in result.stderr
    assert "eyJ" not in result.stderr
    assert recorder.received == [], "nothing sent without a token"

    env["MLFLOW_ACA_AUTH_SCOPE"] = "api://not a scope"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == (
        "mlflow_aca.client_auth.SignInError: MLFLOW_ACA_AUTH_SCOPE='api://not a scope' is not a token scope: "
        "expected api://<application id>/.default (the resource followed by /.default)")


def test_loading_the_provider_imports_no_azure_sdk():
    code = ("import sys, mlflow\nfrom mlflow.tracking.request_auth import registry\n"
            "assert 'mlflow-aca' in [p.get_name() for p in registry._request_auth_provider_registry]\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('azure'))))")
    result = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert json.loads(result.stdout) == []


# --- a real MLflow server behind a token-checking front ---------------------------------------------
class TokenFront:
    """What Easy Auth does for API calls, reduced to the token check: a request whose bearer token
    the stand-in signed for `resource`, unexpired, goes on to MLflow; anything else gets 401."""

    def __init__(self, standin: Standin, resource: str, backend: str) -> None:
        import http.client

        self.seen: list[tuple[str, str, int]] = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                header = self.headers.get("Authorization") or ""
                claims = standin.app.tokens.verify(header[len("Bearer "):]) if header.startswith("Bearer ") else None
                if not claims or claims.get("aud") != resource or claims["exp"] <= time.time():
                    front.seen.append((self.command, self.path, 401))
                    self._answer(401, {"Content-Type": "application/json"}, b'{"error": "unauthenticated"}')
                    return
                connection = http.client.HTTPConnection(backend, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body, headers={**headers, "Host": backend})
                answer = connection.getresponse()
                content = answer.read()
                kept = {k: v for k, v in answer.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                connection.close()
                front.seen.append((self.command, self.path, answer.status))
                self._answer(answer.status, kept, content)

            def _answer(self, status: int, headers: dict, content: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.docker
@pytest.mark.slow
def test_mlflow_client_logs_and_reads_back_through_a_token_checking_front(standin, client, product_image,
                                                                         tmp_path, monkeypatch):
    """`mlflow server` (sqlite, --serve-artifacts) from the product image, behind the front: a real
    MlflowClient with only MLFLOW_TRACKING_URI, MLFLOW_TRACKING_AUTH and MLFLOW_ACA_AUTH_SCOPE set
    logs a metric and an artifact and reads both back."""
    from tests import services

    docker = services.require_docker()
    container = docker.containers.run(
        product_image.reference, detach=True, name=f"mlflow-aca-client-auth-{uuid.uuid4().hex[:8]}",
        command=["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--backend-store-uri",
                 "sqlite:////tmp/mlflow.db", "--serve-artifacts", "--artifacts-destination", "/tmp/artifacts"],
        ports={"5000/tcp": ("127.0.0.1", None)}, labels={"mlflow-aca-test": "client-auth"})
    front = None
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
        backend = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"http://{backend}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            container.reload()
            assert container.status == "running", container.logs(tail=60).decode(errors="replace")
            assert time.monotonic() < deadline, container.logs(tail=60).decode(errors="replace")
            time.sleep(0.5)
        front = TokenFront(standin, client["resource"], backend)
        assert requests.get(front.url + "/api/2.0/mlflow/experiments/search?max_results=1").status_code == 401

        monkeypatch.setenv("MLFLOW_TRACKING_URI", front.url)
        import mlflow

        mlflow_client = mlflow.MlflowClient()
        experiment_id = mlflow_client.create_experiment(f"signed-{uuid.uuid4().hex[:6]}")
        run = mlflow_client.create_run(experiment_id)
        mlflow_client.log_metric(run.info.run_id, "loss", 0.25, step=1)
        artifact = tmp_path / "notes.txt"
        artifact.write_text("signed in with Entra\n")
        mlflow_client.log_artifact(run.info.run_id, str(artifact))
        mlflow_client.set_terminated(run.info.run_id)

        history = mlflow_client.get_metric_history(run.info.run_id, "loss")
        assert [(m.value, m.step) for m in history] == [(0.25, 1)]
        assert [f.path for f in mlflow_client.list_artifacts(run.info.run_id)] == ["notes.txt"]
        local = mlflow_client.download_artifacts(run.info.run_id, "notes.txt", str(tmp_path / "back"))
        assert Path(local).read_text() == "signed in with Entra\n"
        statuses = [status for _, _, status in front.seen]
        assert statuses[0] == 401 and all(s == 200 for s in statuses[1:]), front.seen
        assert any(m == "PUT" and "/mlflow-artifacts/artifacts/" in p for m, p, _ in front.seen)
        assert any(m == "GET" and p.split("?")[0].endswith("/notes.txt") for m, p, _ in front.seen)
        assert len(token_requests(standin, client["resource"])) == 1
    finally:
        if front is not None:
            front.close()
        container.remove(force=True)
        docker.close()
