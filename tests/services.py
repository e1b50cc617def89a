"""The real services the integration tests use, as started by ``scripts/test-services.sh``.

The script prints ``export ACA_TEST_*=...`` lines and writes them to
``.cache/test-services.env``. This module reads them from the environment first, then from
that file, so ``pytest`` works both after ``eval "$(scripts/test-services.sh)"`` and after a
plain ``scripts/test-services.sh``.

Each ``require_*()`` returns the service's settings, or, when the service does not answer:
outside CI skips the test with the reason; in CI (``CI`` set to a true value) fails it, so a
broken set-up cannot pass as a run of skipped tests.

    from tests import services

    def test_push(tmp_path, monkeypatch):
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))   # before the client is made
        client = services.require_docker()
        registry = services.require_registry()
        client.api.push(registry.image("demo"), tag="v1", auth_config=registry.auth_config(), ...)
"""

from __future__ import annotations

import functools
import os
import shlex
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    import docker

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICES_SCRIPT = REPO_ROOT / "scripts" / "test-services.sh"
DEFAULT_ENV_FILE = REPO_ROOT / ".cache" / "test-services.env"
PREFIX = "ACA_TEST_"
SETUP_HINT = f"start the test services with `{SERVICES_SCRIPT.relative_to(REPO_ROOT)}`"


# -- environment -------------------------------------------------------------------------------------
def in_ci() -> bool:
    """True when CI is set to a true-looking value: missing services then fail tests."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


@functools.cache
def _file_env() -> dict[str, str]:
    path = Path(os.environ.get(PREFIX + "ENV_FILE") or DEFAULT_ENV_FILE)
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            values[name] = value
    return values


def setting(name: str) -> str | None:
    """``ACA_TEST_<name>`` from the environment, else from the env file, else None."""
    key = PREFIX + name
    return os.environ.get(key) or _file_env().get(key)


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip the calling test (outside CI) or fail it (in CI) because WHAT is not usable."""
    message = f"{what} unavailable: {reason}; {SETUP_HINT}"
    if in_ci():
        pytest.fail(f"{message} (CI is set: a missing service is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def _required(name: str, what: str) -> str:
    value = setting(name)
    if not value:
        unavailable(what, f"{PREFIX}{name} is not set and {DEFAULT_ENV_FILE} does not define it")
    return value


def _tcp_answers(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when something accepts a TCP connection at host:port, else the error text."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"nothing answers on {host}:{port} ({exc})"


# -- Docker --------------------------------------------------------------------------------------------
@functools.cache
def _docker_problem() -> str | None:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a project dependency
        return f"the docker SDK is not importable ({exc})"
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine for the tests"
        return f"no Docker engine answers ({exc})"
    return None


def docker_available() -> bool:
    """True when a Docker engine answers a ping (checked once per test session)."""
    return _docker_problem() is None


def require_docker(timeout: int = 600) -> docker.DockerClient:
    """A new docker SDK client, or skip/fail. Set DOCKER_CONFIG before calling (it is read now)."""
    problem = _docker_problem()
    if problem:
        unavailable("Docker", problem)
    import docker

    return docker.from_env(timeout=timeout)


def docker_gateway() -> str:
    """The host's address on Docker's default bridge: how a container reaches host services."""
    return _required("DOCKER_GATEWAY", "Docker bridge gateway")


def require_image(client: docker.DockerClient, name: str) -> str:
    """NAME when the engine has that image (base images are never pulled here), else skip/fail."""
    import docker

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        unavailable(f"image {name}", "the engine does not have it (no registry can be pulled from)")
    return name


def busybox_image(client: docker.DockerClient) -> str:
    """A ~2 MB busybox image made from Debian's busybox-static, for fast build/run tests."""
    return require_image(client, _required("BUSYBOX_IMAGE", "busybox base image"))


def python_image(client: docker.DockerClient) -> str:
    """Debian bookworm with python3, venv and pip, trusting the machine's TLS re-signing CA.

    TEST ONLY: the CA trust lives in this base image, never in the product template.
    """
    return require_image(client, _required("PYTHON_IMAGE", "python base image"))


def nokrb_python_image(client: docker.DockerClient) -> str:
    """Like ``python_image`` but with a Python dpkg does not know and no Kerberos, libtirpc or
    libcurl packages: what python:3.13-slim is to the ODBC driver (scripts/test-services.sh,
    build_nokrb_python_image). TEST ONLY, trusts the machine's CA like ``python_image``."""
    return require_image(client, _required("PYTHON_NOKRB_IMAGE", "python base image without Kerberos"))


def build_dockerfile(client: docker.DockerClient, dockerfile: str, tag: str, **kwargs) -> str:
    """Build an image from Dockerfile text alone (no context) and return its id.

    Uses the low-level streaming API so a failure shows the whole build log. Never pulls.
    """
    import io

    log: list[str] = []
    image_id = None
    for chunk in client.api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True,
                                  forcerm=True, pull=False, decode=True, **kwargs):
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            raise AssertionError(f"docker build of {tag} failed: {chunk['error']}\n{''.join(log)}")
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if image_id is None:
        raise AssertionError(f"docker build of {tag} produced no image id\n{''.join(log)}")
    return image_id


def run_container(client: docker.DockerClient, image: str, command: list[str] | str | None = None,
                  *, timeout: float = 120, **kwargs) -> bytes:
    """Run a container to completion and return its stdout; raise with its output on failure.

    Not ``containers.run(remove=True)``: that reads the log stream after removing the
    container and, for a container that exits at once, sometimes returns b"".
    """
    container = client.containers.create(image, command, **kwargs)
    try:
        container.start()
        status = container.wait(timeout=timeout)["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False)
        if status != 0:
            stderr = container.logs(stdout=False, stderr=True)
            raise AssertionError(f"{image} {command!r} exited {status}\nstdout: {stdout!r}\nstderr: {stderr!r}")
        return stdout
    finally:
        container.remove(force=True)


# -- registry ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Registry:
    """The local registry with htpasswd basic auth (distribution v2)."""

    host: str  # "127.0.0.1:PORT": what goes in front of image names
    url: str  # "http://127.0.0.1:PORT"
    username: str
    password: str

    def image(self, repository: str) -> str:
        """The full repository name, e.g. ``127.0.0.1:PORT/mlflow``."""
        return f"{self.host}/{repository}"

    def auth_config(self, password: str | None = None) -> dict[str, str]:
        """The docker SDK's ``auth_config`` for this registry (optionally a wrong password)."""
        return {"username": self.username, "password": self.password if password is None else password,
                "serveraddress": self.host}


def registry() -> Registry | None:
    """The registry's settings, or None when the services were not started."""
    host = setting("REGISTRY")
    if not host:
        return None
    return Registry(host=host, url=setting("REGISTRY_URL") or f"http://{host}",
                    username=setting("REGISTRY_USER") or "", password=setting("REGISTRY_PASSWORD") or "")


def require_registry() -> Registry:
    """The registry's settings after checking it answers and accepts the credentials, or skip/fail."""
    reg = registry()
    if reg is None:
        unavailable("registry", f"{PREFIX}REGISTRY is not set and there is no {DEFAULT_ENV_FILE}")
    request = urllib.request.Request(f"{reg.url}/v2/")
    import base64

    token = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except urllib.error.HTTPError as exc:
        unavailable("registry", f"{reg.url}/v2/ answered {exc.code} to the test credentials")
    except OSError as exc:
        unavailable("registry", f"nothing answers at {reg.url} ({exc})")
    return reg


@dataclass(frozen=True)
class TokenRegistry:
    """A registry in token-auth mode (``auth: token:``), the protocol ACR speaks."""

    name: str
    host: str
    url: str
    realm: str
    service: str
    issuer: str
    pid: int
    log: Path

    def image(self, repository: str) -> str:
        return f"{self.host}/{repository}"

    def stop(self) -> None:
        subprocess.run([str(SERVICES_SCRIPT), "stop-registry", self.name], check=True,
                       capture_output=True, text=True, timeout=60)

    def __enter__(self) -> TokenRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_token_registry(name: str, *, realm: str, service: str, issuer: str, rootcertbundle: Path | str,
                         port: int | None = None) -> TokenRegistry:
    """Start a registry that trusts bearer tokens signed by a key certified in ``rootcertbundle``.

    ``realm`` is the token server's URL (ACR: ``https://<login server>/oauth2/token``), ``service``
    the audience the tokens must carry (ACR: the login server name), ``issuer`` their ``iss``.
    The registry's storage lives in ``.cache/test-services/registry/<name>``. Stop it with
    ``.stop()`` or use it as a context manager. Needs the packages ``scripts/test-services.sh``
    installs; skips/fails like the other services when they are missing.
    """
    args = [str(SERVICES_SCRIPT), "token-registry", name, realm, service, issuer, str(rootcertbundle)]
    if port is not None:
        args.append(str(port))
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        if "is not installed" in result.stderr:
            unavailable("token-auth registry", result.stderr.strip())
        raise RuntimeError(f"starting token registry {name} failed:\n{result.stderr}")
    out = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return TokenRegistry(name=name, host=out["REGISTRY"], url=out["REGISTRY_URL"], realm=realm,
                         service=service, issuer=issuer, pid=int(out["PID"]), log=Path(out["LOG"]))


def registry_token(*, key_pem: bytes, cert_pem: bytes, issuer: str, service: str, subject: str = "test",
                   access: list[dict] | tuple = (), ttl: int = 300) -> str:
    """A bearer token (JWT, RS256) that a token-auth registry accepts.

    distribution v2.8 checks: the signature, with the certificate in the ``x5c`` header chaining
    to ``rootcertbundle``; ``iss`` == issuer; ``aud`` == service; ``nbf``/``exp``; and ``access``
    (``[{"type": "repository", "name": "mlflow", "actions": ["pull", "push"]}]``) covering the
    request. ``key_pem`` must be an RSA key (e.g. ``trustme.CA(key_type=trustme.KeyType.RSA)``).
    """
    import base64
    import json
    import time
    import uuid

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": service, "iat": now, "nbf": now - 30, "exp": now + ttl,
              "jti": uuid.uuid4().hex, "access": list(access)}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    key = serialization.load_pem_private_key(key_pem, password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


# -- Azurite -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Azurite:
    """Azurite's blob service (in-memory), with the well-known devstoreaccount1 account."""

    port: int
    blob_endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1
    connection_string: str  # for code running on the host
    container_connection_string: str  # for code inside a container (bridge gateway address)
    account_name: str = "devstoreaccount1"

    @property
    def account_key(self) -> str:
        return dict(part.split("=", 1) for part in self.connection_string.split(";") if part)["AccountKey"]


def require_azurite() -> Azurite:
    port = int(_required("AZURITE_PORT", "Azurite"))
    problem = _tcp_answers("127.0.0.1", port)
    if problem:
        unavailable("Azurite", problem)
    return Azurite(port=port, blob_endpoint=_required("AZURITE_BLOB_ENDPOINT", "Azurite"),
                   connection_string=_required("AZURITE_CONNECTION_STRING", "Azurite"),
                   container_connection_string=_required("AZURITE_CONTAINER_CONNECTION_STRING", "Azurite"))


# -- PostgreSQL --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Postgres:
    """PostgreSQL 15; the test role may create databases (CREATEDB)."""

    host: str
    port: int
    user: str
    password: str
    database: str
    gateway: str  # the host's address as seen from a container

    def url(self, database: str | None = None, *, driver: str | None = None, for_container: bool = False) -> str:
        """A SQLAlchemy URL. Without ``driver`` it is ``postgresql://`` (psycopg 3 with SQLAlchemy 2.1)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        host = self.gateway if for_container else self.host
        return f"{scheme}://{self.user}:{self.password}@{host}:{self.port}/{database or self.database}"

    @property
    def container_url(self) -> str:
        return self.url(for_container=True)


def require_postgres() -> Postgres:
    host = setting("PG_HOST") or "127.0.0.1"
    port = int(_required("PG_PORT", "PostgreSQL"))
    problem = _tcp_answers(host, port)
    if problem:
        unavailable("PostgreSQL", problem)
    return Postgres(host=host, port=port, user=_required("PG_USER", "PostgreSQL"),
                    password=_required("PG_PASSWORD", "PostgreSQL"),
                    database=_required("PG_DATABASE", "PostgreSQL"),
                    gateway=setting("DOCKER_GATEWAY") or "172.17.0.1")


# -- the stand-in for packages.microsoft.com ------------------------------------------------------
@dataclass(frozen=True)
class MicrosoftRepository:
    """A signed apt repository with Microsoft's layout carrying the real msodbcsql18 driver
    (scripts/ms-odbc-repo.sh), served at the Docker bridge gateway: URLs for build containers."""

    repository_url: str  # http://<gateway>:<port>/debian/12/prod  (odbc_repository_url)
    key_url: str  # http://<gateway>:<port>/keys/microsoft.asc  (odbc_key_url)
    missing_lib_url: str  # the same package, built so the driver needs libssl.so.1.0.2
    key_fingerprint: str  # of the repository's own signing key (odbc_key_fingerprint)

    def settings(self, *, repository_url: str | None = None) -> dict[str, str]:
        """The configuration keys that install the driver from here."""
        return {"odbc_repository_url": repository_url or self.repository_url, "odbc_key_url": self.key_url,
                "odbc_key_fingerprint": self.key_fingerprint}


def key_fingerprints(armored: bytes) -> list[str]:
    """The primary key fingerprints in an OpenPGP key file, as the host's gpg reads them."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gpg-") as home:
        listing = subprocess.run(["gpg", "--homedir", home, "--batch", "--show-keys", "--with-colons"],
                                 input=armored, capture_output=True, check=True).stdout.decode()
    fingerprints, primary = [], False
    for record in (line.split(":") for line in listing.splitlines()):
        if record[0] == "pub":
            primary = True
        elif record[0] == "fpr" and primary:
            fingerprints.append(record[9])
            primary = False
    return fingerprints


def require_ms_repository() -> MicrosoftRepository:
    key_url = _required("MS_KEY_URL", "ODBC repository")
    try:
        with urllib.request.urlopen(key_url, timeout=5) as response:
            key = response.read()
    except OSError as exc:
        unavailable("ODBC repository", f"nothing answers at {key_url} ({exc})")
    [fingerprint] = key_fingerprints(key)
    return MicrosoftRepository(repository_url=_required("MS_REPO_URL", "ODBC repository"), key_url=key_url,
                               missing_lib_url=_required("MS_REPO_MISSING_LIB_URL", "ODBC repository"),
                               key_fingerprint=fingerprint)
