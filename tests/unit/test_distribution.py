"""Where an image reference lives: Docker's naming rules (distribution/reference normalize.go,
splitDockerDomain; moby registry/config.go DefaultV2Registry)."""

import pytest

from mlflow_aca.distribution import locate, parse_challenge

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("image", "registry", "repository", "reference"), [
    ("python:3.12", "registry-1.docker.io", "library/python", "3.12"),
    ("python", "registry-1.docker.io", "library/python", "latest"),
    ("library/python:3.12", "registry-1.docker.io", "library/python", "3.12"),
    ("docker.io/python:3.12", "registry-1.docker.io", "library/python", "3.12"),
    ("index.docker.io/team/app:1", "registry-1.docker.io", "team/app", "1"),
    ("team/app:1", "registry-1.docker.io", "team/app", "1"),
    ("localhost/app", "localhost", "app", "latest"),
    ("127.0.0.1:5000/team/mlflow:3", "127.0.0.1:5000", "team/mlflow", "3"),
    ("Registry/app:1", "Registry", "app", "1"),  # an uppercase first component is a host
    ("acr.azurecr.io/mlflow-server:3.17.2-ab", "acr.azurecr.io", "mlflow-server", "3.17.2-ab"),
    (f"acr.azurecr.io/mlflow@{DIGEST}", "acr.azurecr.io", "mlflow", DIGEST),
    (f"acr.azurecr.io/mlflow:1@{DIGEST}", "acr.azurecr.io", "mlflow", DIGEST),  # the digest wins
])
def test_locate_follows_dockers_naming(image, registry, repository, reference):
    location = locate(image)
    assert (location.registry, location.repository, location.reference) == (registry, repository, reference)
    assert location.by_digest == ("@" in image)


def test_challenge_parameters():
    scheme, params = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"')
    assert scheme == "bearer" and params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"}
    assert parse_challenge('Basic realm="Registry Realm"')[0] == "basic"
