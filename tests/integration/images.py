"""Fixtures for tests that build, push and run the product image (imported by conftest.py).

- `product_image` (session): the product template built once per session by the real CLI
  (`mlflow-aca build --local`) with the real engine, with the ODBC step on: Microsoft's real
  driver from the local stand-in of packages.microsoft.com (odbc_repository_url/odbc_key_url,
  configuration keys like any mirror), on the local test base image (which alone carries the
  machine's TLS re-signing CA: test-only, never in the template). Later suites run this image;
  `settings` are the configuration keys that give it.
- `registry_backend` (session) and `acr` (per test): the stand-in's registry login server with a
  real token-auth registry behind it, so `properties.loginServer` leads to a registry the engine
  pushes to with an ACR refresh token (tests/standin/registry_front.py).
- `docker_config`: an empty DOCKER_CONFIG folder for the CLI, to prove nothing is written there.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.clirunner import run_cli

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
BUILD_TIMEOUT = 1200


@dataclass(frozen=True)
class ProductImage:
    reference: str  # local reference, e.g. "mlflow-server:3.17.2-0123456789ab"
    repository: str
    tag: str
    image_id: str
    size_bytes: int
    build_seconds: float  # the CLI's own measure; tiny when the engine already had every layer
    settings: dict[str, Any]  # configuration keys that render this image


def write_config(directory: Path, settings: dict[str, Any]) -> None:
    from mlflow_aca.config.write import toml_value

    lines = [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    (directory / "mlflow-aca.toml").write_text("\n".join(lines) + "\n")


# Not the product's default repository name: the engine may be shared (developer machines), and
# nothing else should retag this one under the session's feet.
TEST_REPOSITORY = "mlflow-aca-test/mlflow-server"


def image_settings() -> dict[str, Any]:
    """The configuration the tests build with: the default template with the ODBC step on,
    installing from the local Microsoft repository stand-in, on the local python base image."""
    client = services.require_docker()
    try:
        base = services.python_image(client)
    finally:
        client.close()
    repository = services.require_ms_repository()
    return {"install_odbc_driver": True, **repository.settings(), "base_image": base,
            "image_repository": TEST_REPOSITORY}


@pytest.fixture(scope="session")
def product_image(tmp_path_factory) -> ProductImage:
    settings = image_settings()
    directory = tmp_path_factory.mktemp("product-image")
    write_config(directory, {"name": "mlflow", "location": "westeurope", **settings})
    docker_config = tmp_path_factory.mktemp("product-image-docker-config")
    result = run_cli("build", "--local", "--json", cwd=directory, env={"DOCKER_CONFIG": str(docker_config)},
                     timeout=BUILD_TIMEOUT)
    assert result.code == 0, result
    data = result.json["data"]
    return ProductImage(reference=data["image"], repository=data["image"].rsplit(":", 1)[0], tag=data["tag"],
                        image_id=data["image_id"], size_bytes=data["size_bytes"], build_seconds=data["seconds"],
                        settings=settings)


@pytest.fixture
def docker_config(tmp_path) -> Path:
    folder = tmp_path / "docker-config"
    folder.mkdir()
    return folder


# -- the registry behind the stand-in's login server ---------------------------------------------------
@dataclass
class Acr:
    """The attached registry: its login server (what Azure reports) and a reader of the real
    registry's HTTP API with tokens signed by the stand-in's registry token key."""

    standin: Any
    login_server: str
    backend: services.TokenRegistry

    def _token(self, repository: str) -> str:
        signer = self.standin.app.registry_front.signer
        return services.registry_token(key_pem=signer.private_key_pem.bytes(), cert_pem=signer.cert_pem.bytes(),
                                       issuer=self.backend.issuer, service=self.backend.service,
                                       access=[{"type": "repository", "name": repository, "actions": ["pull"]}])

    def get(self, path: str, repository: str, *, method: str = "GET", accept: str | None = None):
        request = urllib.request.Request(f"{self.backend.url}{path}", method=method,
                                         headers={"Authorization": f"Bearer {self._token(repository)}"})
        if accept:
            request.add_header("Accept", accept)
        return urllib.request.urlopen(request, timeout=30)

    def tags(self, repository: str) -> list[str]:
        try:
            with self.get(f"/v2/{repository}/tags/list", repository) as response:
                return json.load(response)["tags"] or []
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise

    def manifest(self, repository: str, tag: str) -> tuple[str, dict]:
        """(digest, manifest) as the registry serves `repository:tag`."""
        with self.get(f"/v2/{repository}/manifests/{tag}", repository, accept=MANIFEST_V2) as response:
            return response.headers["Docker-Content-Digest"], json.load(response)


@pytest.fixture(scope="session")
def registry_backend(standin_session):
    front = standin_session.registry_front()
    backend = services.start_token_registry(f"acr-{uuid.uuid4().hex[:8]}", realm=front["realm"],
                                            service=front["service"], issuer=front["issuer"],
                                            rootcertbundle=front["rootcertbundle"])
    yield backend
    backend.stop()
    _remove_local_tags(front["login_server"])


@pytest.fixture
def acr(standin, registry_backend) -> Acr:
    info = standin.attach_registry(registry_backend.host)
    return Acr(standin=standin, login_server=info["login_server"], backend=registry_backend)


def _remove_local_tags(login_server: str) -> None:
    """Untag what the session pushed (`<login server>/...`): the port is gone with the stand-in."""
    if not services.docker_available():
        return
    import docker

    client = docker.from_env(timeout=60)
    try:
        for image in client.images.list():
            for tag in image.tags:
                if tag.startswith(login_server + "/"):
                    client.images.remove(tag)
    except docker.errors.DockerException:
        pass  # best effort: a leftover tag costs nothing
    finally:
        client.close()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
