"""The test services are real and usable: Docker engine, registry (htpasswd and token auth),
base images, Azurite and PostgreSQL, from the host and from a container.

Outside CI these skip when a service is not running; with CI=true they fail instead.
Start everything with ``scripts/test-services.sh``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests import services

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
# Pure-python PostgreSQL driver installed in a container by the pip test; pinned so the
# layer cache makes reruns instant.
PG8000 = "pg8000==1.31.6"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """An empty Docker config folder: nothing a test does may land in the user's ~/.docker."""
    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


@pytest.fixture
def docker_client(docker_config):
    client = services.require_docker()
    yield client
    client.close()


@pytest.fixture
def cleanup_images(docker_client):
    """Names appended here are removed (forcibly) after the test."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            docker_client.images.remove(name, force=True)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass


def _registry_get(reg: services.Registry, path: str, *, accept: str | None = None, auth: bool = True):
    request = urllib.request.Request(f"{reg.url}{path}")
    if auth:
        token = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if accept:
        request.add_header("Accept", accept)
    return urllib.request.urlopen(request, timeout=10)


def _push(client, repository: str, tag: str, auth_config: dict) -> list[dict]:
    return list(client.api.push(repository, tag=tag, auth_config=auth_config, stream=True, decode=True))


def _build_tiny(client, tag: str) -> str:
    # A unique label makes each image (and so its manifest digest) distinct.
    dockerfile = (f"FROM {services.busybox_image(client)}\n"
                  f"LABEL test.id={uuid.uuid4().hex}\n"
                  "RUN echo built-by-test > /built.txt\n"
                  'CMD ["cat", "/built.txt"]\n')
    return services.build_dockerfile(client, dockerfile, tag)


# -- Docker engine and base images ----------------------------------------------------------------------
@pytest.mark.docker
def test_docker_builds_and_runs_an_image_from_busybox(docker_client, cleanup_images):
    tag = f"mlflow-aca-test/tiny:{_unique('t')}"
    cleanup_images.append(tag)
    _build_tiny(docker_client, tag)
    output = services.run_container(docker_client, tag)
    assert output == b"built-by-test\n"


@pytest.fixture(scope="module")
def pip_image(tmp_path_factory):
    """FROM the python base image: a venv and a pip install from PyPI (through the re-signing
    proxy, so it proves the image's test-only CA trust works). Built once per module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))
        client = services.require_docker()
    tag = "mlflow-aca-test/pip-check:latest"
    dockerfile = (f"FROM {services.python_image(client)}\n"
                  "RUN python3 -m venv /opt/venv\n"
                  f"RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check {PG8000}\n")
    services.build_dockerfile(client, dockerfile, tag)
    yield client, tag
    client.close()


@pytest.mark.docker
@pytest.mark.slow
def test_python_image_venv_and_pip_install_work(pip_image):
    client, tag = pip_image
    out = services.run_container(client, tag, ["/opt/venv/bin/python", "-c",
                                               "import sys, pg8000; print(sys.version_info[:2], pg8000.__version__)"])
    assert out.decode().strip() == f"(3, 11) {PG8000.split('==')[1]}"


@pytest.mark.docker
def test_python_image_trusts_the_test_ca_through_its_env(docker_client):
    image = docker_client.images.get(services.python_image(docker_client))
    env = dict(item.split("=", 1) for item in image.attrs["Config"]["Env"])
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    assert env["PIP_CERT"] == env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"] == bundle
    out = services.run_container(docker_client, image.id, ["ls", "/usr/local/share/ca-certificates/mlflow-aca-test/"])
    assert out.strip(), "the machine's CA certificates were not copied into the image"


# -- registry with htpasswd ---------------------------------------------------------------------------
@pytest.mark.docker
def test_push_with_auth_config_and_manifest_is_in_the_registry(docker_client, docker_config, cleanup_images):
    reg = services.require_registry()
    repository = reg.image(f"mlflow-aca-test/{_unique('push')}")
    tag = "v1"
    cleanup_images.append(f"{repository}:{tag}")
    _build_tiny(docker_client, f"{repository}:{tag}")

    chunks = _push(docker_client, repository, tag, reg.auth_config())

    errors = [c for c in chunks if "error" in c]
    assert not errors, errors
    digests = [c["aux"]["Digest"] for c in chunks if "aux" in c and "Digest" in c.get("aux", {})]
    assert len(digests) == 1, chunks
    path = repository.split("/", 1)[1]
    with _registry_get(reg, f"/v2/{path}/tags/list") as response:
        assert json.load(response)["tags"] == [tag]
    with _registry_get(reg, f"/v2/{path}/manifests/{tag}", accept=MANIFEST_V2) as response:
        assert response.headers["Docker-Content-Digest"] == digests[0]
        assert json.load(response)["mediaType"] == MANIFEST_V2
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        _registry_get(reg, f"/v2/{path}/tags/list", auth=False)
    assert anonymous.value.code == 401
    # auth_config is passed per request: nothing is written to the Docker config folder.
    assert list(docker_config.iterdir()) == []


@pytest.mark.docker
def test_push_with_wrong_password_carries_an_error_chunk(docker_client, cleanup_images):
    reg = services.require_registry()
    repository = reg.image(f"mlflow-aca-test/{_unique('denied')}")
    cleanup_images.append(f"{repository}:v1")
    _build_tiny(docker_client, f"{repository}:v1")

    # The SDK does not raise: the failure arrives only inside the stream.
    chunks = _push(docker_client, repository, "v1", reg.auth_config(password="wrong-password"))

    errors = [c["error"] for c in chunks if "error" in c]
    assert errors, chunks
    assert "unauthorized" in errors[-1].lower() or "authentication required" in errors[-1].lower(), errors
    with pytest.raises(urllib.error.HTTPError) as missing:
        _registry_get(reg, f"/v2/{repository.split('/', 1)[1]}/tags/list")
    assert missing.value.code == 404


# -- registry with token auth (the ACR protocol) ------------------------------------------------------
def test_token_auth_registry_answers_with_a_bearer_challenge(tmp_path):
    import trustme

    ca = trustme.CA()
    bundle = tmp_path / "token-signers.pem"
    ca.cert_pem.write_to_path(str(bundle))
    realm = "http://127.0.0.1:9/oauth2/token"
    service = "mlflowacatest.azurecr.io"
    with services.start_token_registry(_unique("tok"), realm=realm, service=service,
                                       issuer="mlflow-aca-test-standin", rootcertbundle=bundle) as reg:
        with pytest.raises(urllib.error.HTTPError) as base:
            urllib.request.urlopen(f"{reg.url}/v2/", timeout=10)
        assert base.value.code == 401
        assert base.value.headers["WWW-Authenticate"] == f'Bearer realm="{realm}",service="{service}"'
        # A repository request names the scope the client must ask the token server for.
        with pytest.raises(urllib.error.HTTPError) as repo:
            urllib.request.urlopen(f"{reg.url}/v2/mlflow/manifests/latest", timeout=10)
        assert repo.value.code == 401
        assert repo.value.headers["WWW-Authenticate"] == (
            f'Bearer realm="{realm}",service="{service}",scope="repository:mlflow:pull"')
        # A token that does not verify against the bundle is refused.
        with pytest.raises(urllib.error.HTTPError) as forged:
            request = urllib.request.Request(f"{reg.url}/v2/")
            request.add_header("Authorization", "Bearer not.a.jwt")
            urllib.request.urlopen(request, timeout=10)
        assert forged.value.code == 401
    # stop() returned only once the process had exited (gone, or a zombie with an empty cmdline).
    cmdline = Path(f"/proc/{reg.pid}/cmdline")
    assert not cmdline.exists() or b"registry" not in cmdline.read_bytes()
    with pytest.raises(urllib.error.URLError) as gone:
        urllib.request.urlopen(f"{reg.url}/v2/", timeout=2)
    assert not isinstance(gone.value, urllib.error.HTTPError)


@pytest.fixture
def token_server():
    """A minimal token server, the role ACR's /oauth2/token plays (and later the stand-in's):
    checks Basic credentials, grants the requested scopes in a JWT signed by a test CA."""
    import http.server
    import threading
    import trustme
    from urllib.parse import parse_qs, urlparse

    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    state = {"requests": [], "password": "refresh-token-for-test", "service": "mlflowacatest.azurecr.io",
             "issuer": "mlflow-aca-test-standin", "ca": ca}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _grant(self, params: dict[str, list[str]]):
            auth = self.headers.get("Authorization", "")
            state["requests"].append({"method": self.command, "path": urlparse(self.path).path,
                                      "params": params, "basic": auth.startswith("Basic ")})
            if auth.startswith("Basic "):  # what the engine sends: user name + refresh token
                password = base64.b64decode(auth[6:]).decode().partition(":")[2]
            else:  # the OAuth form (POST grant_type=refresh_token) other clients use
                password = params.get("refresh_token", [""])[0]
            if password != state["password"]:
                self.send_response(401)
                self.end_headers()
                return
            access = []
            for scope in params.get("scope", []):
                kind, name, actions = scope.split(":")  # repository:<name>:pull,push
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            token = services.registry_token(key_pem=ca.private_key_pem.bytes(), cert_pem=ca.cert_pem.bytes(),
                                            issuer=state["issuer"], service=state["service"], access=access)
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._grant(parse_qs(urlparse(self.path).query))

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            self._grant(parse_qs(self.rfile.read(length).decode()))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["realm"] = f"http://127.0.0.1:{server.server_port}/oauth2/token"
    yield state
    server.shutdown()
    server.server_close()


@pytest.mark.docker
def test_token_auth_registry_takes_a_push_with_tokens_from_a_token_server(docker_client, token_server, tmp_path,
                                                                          cleanup_images):
    bundle = tmp_path / "token-signers.pem"
    token_server["ca"].cert_pem.write_to_path(str(bundle))
    with services.start_token_registry(_unique("tok"), realm=token_server["realm"], service=token_server["service"],
                                       issuer=token_server["issuer"], rootcertbundle=bundle) as reg:
        repository = reg.image("mlflow-aca-test/tok")
        cleanup_images.append(f"{repository}:v1")
        _build_tiny(docker_client, f"{repository}:v1")
        # As ACR: a fixed user name and a refresh token as the password.
        acr_like = {"username": "00000000-0000-0000-0000-000000000000", "serveraddress": reg.host}

        denied = _push(docker_client, repository, "v1", {**acr_like, "password": "wrong"})
        assert any("error" in c for c in denied), denied

        chunks = _push(docker_client, repository, "v1", {**acr_like, "password": token_server["password"]})
        assert not [c for c in chunks if "error" in c], chunks
        digest = next(c["aux"]["Digest"] for c in chunks if "Digest" in c.get("aux", {}))

        # What the engine asked the token server: GET with Basic auth, service and push+pull scope.
        granted = [r for r in token_server["requests"] if r["params"].get("scope")]
        assert granted[-1]["method"] == "GET" and granted[-1]["basic"], token_server["requests"]
        assert granted[-1]["params"]["service"] == [token_server["service"]]
        scopes = {(scope.rsplit(":", 1)[0], frozenset(scope.rsplit(":", 1)[1].split(",")))
                  for scope in granted[-1]["params"]["scope"]}
        assert ("repository:mlflow-aca-test/tok", frozenset({"pull", "push"})) in scopes

        ca = token_server["ca"]
        pull = services.registry_token(key_pem=ca.private_key_pem.bytes(), cert_pem=ca.cert_pem.bytes(),
                                       issuer=token_server["issuer"], service=token_server["service"],
                                       access=[{"type": "repository", "name": "mlflow-aca-test/tok",
                                                "actions": ["pull"]}])
        request = urllib.request.Request(f"{reg.url}/v2/mlflow-aca-test/tok/manifests/v1",
                                         headers={"Authorization": f"Bearer {pull}", "Accept": MANIFEST_V2})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Docker-Content-Digest"] == digest
        # A token for another audience (service) is refused.
        other = services.registry_token(key_pem=ca.private_key_pem.bytes(), cert_pem=ca.cert_pem.bytes(),
                                        issuer=token_server["issuer"], service="other.azurecr.io",
                                        access=[{"type": "repository", "name": "mlflow-aca-test/tok",
                                                 "actions": ["pull"]}])
        request = urllib.request.Request(f"{reg.url}/v2/mlflow-aca-test/tok/manifests/v1",
                                         headers={"Authorization": f"Bearer {other}", "Accept": MANIFEST_V2})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401


# -- Azurite ------------------------------------------------------------------------------------------
def test_azurite_upload_and_list_a_blob():
    from azure.storage.blob import BlobServiceClient

    azurite = services.require_azurite()
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(_unique("svc"))
    try:
        container.upload_blob("runs/1/artifacts/model.txt", b"weights")
        assert [b.name for b in container.list_blobs()] == ["runs/1/artifacts/model.txt"]
        assert container.download_blob("runs/1/artifacts/model.txt").readall() == b"weights"
    finally:
        container.delete_container()


# -- PostgreSQL ---------------------------------------------------------------------------------------
def test_postgres_accepts_sqlalchemy_connections():
    import sqlalchemy as sa

    pg = services.require_postgres()
    engine = sa.create_engine(pg.url())
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as conn:
            assert conn.execute(sa.text("select current_user")).scalar() == pg.user
            assert conn.execute(sa.text("show server_version_num")).scalar().startswith("15")
            conn.execute(sa.text("create temporary table t (x int)"))
            conn.execute(sa.text("insert into t values (41), (1)"))
            assert conn.execute(sa.text("select sum(x) from t")).scalar() == 42
    finally:
        engine.dispose()
    # The role may create throw-away databases (e.g. a schema made by an older MLflow).
    name = _unique("db").replace("-", "_")
    admin = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{name}"'))
        scratch = sa.create_engine(pg.url(name))
        with scratch.connect() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar() == name
        scratch.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}"'))
        admin.dispose()


def test_postgres_refuses_a_wrong_password():
    import sqlalchemy as sa

    pg = services.require_postgres()
    engine = sa.create_engine(pg.url().replace(f":{pg.password}@", ":wrong@"))
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        with engine.connect():
            pass
    engine.dispose()


# -- from inside a container on the bridge ------------------------------------------------------------
@pytest.mark.docker
def test_container_on_the_bridge_reaches_azurite(docker_client):
    from azure.storage.blob import BlobServiceClient

    azurite = services.require_azurite()
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(_unique("pub"), public_access="blob")
    try:
        container.upload_blob("hello.txt", b"from azurite")
        endpoint = azurite.container_connection_string.split("BlobEndpoint=")[1].rstrip(";")
        url = f"{endpoint}/{container.container_name}/hello.txt"
        out = services.run_container(docker_client, services.busybox_image(docker_client), ["wget", "-q", "-O", "-", url])
        assert out == b"from azurite"
    finally:
        container.delete_container()


@pytest.mark.docker
@pytest.mark.slow
def test_container_on_the_bridge_reaches_postgres_with_a_password(pip_image):
    client, tag = pip_image
    pg = services.require_postgres()
    script = ("import sys, pg8000.native as pg\n"
              "c = pg.Connection(sys.argv[1], host=sys.argv[2], port=int(sys.argv[3]), password=sys.argv[4],"
              " database=sys.argv[5])\n"
              "print(c.run('select current_user, inet_client_addr()::text')[0])\n")
    out = services.run_container(client, tag, ["/opt/venv/bin/python", "-c", script, pg.user, pg.gateway,
                                               str(pg.port), pg.password, pg.database])
    user, address = json.loads(out.decode().replace("'", '"'))
    assert user == pg.user
    assert address.startswith("172."), address  # came over the bridge, not loopback
