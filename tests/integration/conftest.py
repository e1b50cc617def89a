"""A deployment directory wired to the Azure stand-in: the real CLI in a subprocess, reaching
the stand-in only through the settings a user would set (custom ARM endpoint, CA bundle,
managed-identity variables, HTTPS proxy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.clirunner import CliResult, run_cli
from tests.integration.images import acr, docker_config, product_image, registry_backend  # noqa: F401 - fixtures
from tests.integration.replay import deployable
from tests.integration.replay import postgres_driver, replay_engine, replay_image  # noqa: F401 - fixtures
from tests.standin.fixtures import client_env

WRITE_METHODS = ("PUT", "PATCH", "DELETE")
# Where lease.py writes: the tags of the deployment's identity (the product writes tags this way
# for nothing else).
LEASE_PATH = "/providers/Microsoft.Resources/tags/default"


def _lease_write(request: dict[str, Any]) -> bool:
    return (request["method"] == "PATCH" and request["path"].split("?", 1)[0].endswith(LEASE_PATH)
            and "/userAssignedIdentities/" in request["path"])


class Deployment:
    def __init__(self, standin: Any, directory: Path, settings: dict[str, Any]) -> None:
        self.standin = standin
        self.directory = directory
        # lease_settle_seconds: the stand-in answers in milliseconds (lease.py's bound, scaled
        # like poll_interval); 3 s per writing command would only slow the suite down.
        self.settings = {"name": "mlflow", "location": "westeurope", "poll_interval": 0,
                         "lease_settle_seconds": 0.5, **settings}
        self.write_config()

    @classmethod
    def with_image(cls, standin: Any, directory: Path, image: str, settings: dict[str, Any]) -> Deployment:
        """`provision` + `deploy --image IMAGE` into an emptied stand-in at zero latency: what the
        replays run before starting the deployed containers."""
        standin.reset()
        standin.set_latency(0)
        deployment = cls(standin, directory, settings)
        deployment.ok("provision")
        deployment.ok("deploy", "--image", deployable(deployment, image))
        return deployment

    # --- images the deploy will pull ------------------------------------------------------------
    def push_template_image(self) -> str:
        """Stands for `mlflow-aca build` + `mlflow-aca push` run earlier: the image the template
        names (what `deploy` without --image deploys) goes into the stand-in's catalog under the
        provisioned registry's login server, where the image check and the revision's pull look.
        Call after `provision`, and again after a setting that changes the image (mlflow_version,
        extra_packages, ...): its tag follows the content. Returns the reference."""
        from mlflow_aca.config import load_settings
        from mlflow_aca.template import render_image

        login_server = self.one("Microsoft.ContainerRegistry/registries")["properties"]["loginServer"]
        reference = f"{login_server}/{render_image(load_settings(self.directory / 'mlflow-aca.toml')).reference}"
        self.standin.add_registry_image(reference)
        return reference

    def publish_public_image(self, reference: str = "public.example.io/team/mlflow:1") -> str:
        """An image some other registry serves to anyone (anonymous pull), e.g. for `--image`."""
        self.standin.add_registry_image(reference, anonymous=True)
        return reference

    @property
    def owned_tags(self) -> dict[str, str]:
        """The tags `provision` puts on what it creates: for a test that makes such a resource
        directly (quicker than a provision) and means it to be this deployment's own."""
        from mlflow_aca.resources.ownership import DEPLOYMENT_TAG, MANAGED_BY

        return {MANAGED_BY[0]: MANAGED_BY[1], DEPLOYMENT_TAG: self.settings["name"]}

    def write_config(self, **changes: Any) -> None:
        self.settings.update(changes)
        from mlflow_aca.config.write import toml_value

        lines = [f"{key} = {toml_value(value)}" for key, value in self.settings.items()]
        (self.directory / "mlflow-aca.toml").write_text("\n".join(lines) + "\n")

    def wait_for_lease_expiry(self) -> None:
        """Until a killed run's lease (lease.py) has expired: what an operator waits for after a
        SIGKILL (lease_seconds; tests that kill runs set it low)."""
        import time
        from datetime import UTC, datetime

        from mlflow_aca.lease import LEASE_TAG, Holder

        identity = next((r for r in self.resources("Microsoft.ManagedIdentity/userAssignedIdentities")
                         if r["name"] == f"{self.settings['name']}-id"), None)
        holder = Holder.decode(((identity or {}).get("tags") or {}).get(LEASE_TAG))
        if holder is not None:
            until = datetime.fromisoformat(holder.until.replace("Z", "+00:00"))
            time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)

    def env(self, **extra: str) -> dict[str, str]:
        return {**client_env(self.standin), **extra}

    def cli(self, *args: str, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 180) -> CliResult:
        return run_cli(*args, cwd=self.directory, env=self.env(**(env or {})), input=input, timeout=timeout)

    def ok(self, *args: str, **kwargs: Any) -> dict[str, Any]:
        """Run with --json and expect success; return the data."""
        result = self.cli(*args, "--json", **kwargs)
        assert result.code == 0, result
        document = json.loads(result.stdout)
        assert document["ok"] is True, document
        return document["data"]

    # --- what the stand-in saw and holds -----------------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        return self.standin.requests(method=method, path=path)

    def writes(self) -> list[dict[str, Any]]:
        """Writes to Azure resources; the run lease's own tag writes (lease.py: one to take it,
        one to give it back, per writing command) are counted apart, in lease_writes()."""
        return [r for r in self.requests() if r["method"] in WRITE_METHODS and not _lease_write(r)]

    def lease_writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests("PATCH", LEASE_PATH) if _lease_write(r)]

    def resources(self, type_: str | None = None) -> list[dict[str, Any]]:
        return self.standin.resources(type_)

    def one(self, type_: str) -> dict[str, Any]:
        found = self.resources(type_)
        assert len(found) == 1, (type_, [r.get("id") for r in found])
        return found[0]

    @property
    def subscription_id(self) -> str:
        return self.standin.subscription_id

    def arm(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A direct ARM call as the operator (for resources the tool did not make)."""
        import ssl
        import urllib.request

        url = f"{self.standin.url}/subscriptions/{self.subscription_id}{path}"
        request = urllib.request.Request(
            url, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.standin.issue_token()}",
                     "Content-Type": "application/json"})
        context = ssl.create_default_context(cafile=self.standin.ca_path)
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else {}


@pytest.fixture
def deployment(standin, tmp_path) -> Deployment:
    return Deployment(standin, tmp_path, {})


@pytest.fixture
def deployed(deployment) -> Deployment:
    """Provisioned and deployed (the template's image stands for a build + push run earlier),
    the request log cleared."""
    deployment.ok("provision")
    deployment.push_template_image()
    deployment.ok("deploy")
    deployment.standin.clear_requests()
    return deployment


@pytest.fixture
def make_deployment(standin, tmp_path_factory):
    def make(**settings: Any) -> Deployment:
        return Deployment(standin, tmp_path_factory.mktemp("deployment"), settings)

    return make


@pytest.fixture(scope="session")
def docker_client():
    """The Docker engine, for the files that build or inspect images themselves."""
    client = services.require_docker()
    yield client
    client.close()
