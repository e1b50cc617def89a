"""build --remote (ACR Tasks) against the stand-in: the request sequence `az acr build` follows,
the run log streamed while it grows, success and failure reporting, and the refusal free-trial
subscriptions get. The stand-in does not build; it runs the uploaded Dockerfile's steps as a log.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import time
import uuid
from typing import Any

import pytest

from tests.integration.test_build_push import DEAD_ENGINE, JWT_PREFIX
from tests.standin import faults

RG = "rg-remote"


def _registry(deployment, **settings: Any) -> str:
    name = "acrremote" + uuid.uuid4().hex[:6]
    deployment.write_config(resource_group=RG, registry_name=name, **settings)
    deployment.arm("PUT", f"/resourcegroups/{RG}?api-version=2025-04-01", {"location": "westeurope"})
    deployment.arm("PUT", f"/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/{name}"
                   "?api-version=2025-11-01", {"location": "westeurope", "sku": {"name": "Basic"},
                                               "tags": deployment.owned_tags})  # as provision makes it
    return name


def _rendered(deployment):
    from mlflow_aca.config import load_settings
    from mlflow_aca.template import render_image

    return render_image(load_settings(deployment.directory / "mlflow-aca.toml"))


def test_remote_build_follows_acr_tasks_sequence(deployment):
    registry = _registry(deployment)
    deployment.standin.set_latency(0.01)  # a run lasts 1.5 s: its log is read while it grows
    deployment.standin.clear_requests()

    data = deployment.ok("build", "--remote", env={"DOCKER_HOST": DEAD_ENGINE})

    rendered = _rendered(deployment)
    login_server = f"{registry}.azurecr.io"
    assert (data["mode"], data["status"], data["run_id"]) == ("remote", "Succeeded", "ca1")
    assert data["image"] == f"{login_server}/{rendered.reference}"
    run = deployment.standin.resource(f"/subscriptions/{deployment.subscription_id}/resourceGroups/{RG}/providers/"
                                      f"Microsoft.ContainerRegistry/registries/{registry}/runs/ca1")
    assert run is not None
    assert data["digest"].startswith("sha256:")

    calls = [(r["method"], r["path"].rsplit("/", 1)[-1] if "/subscriptions/" in r["path"] else r["path"])
             for r in deployment.requests() if "/registries/" in r["path"] or not r["path"].startswith("/subscr")]
    sequence = [name for _, name in calls]
    upload = sequence.index("listBuildSourceUploadUrl")
    put_blob = next(i for i, (m, p) in enumerate(calls) if m == "PUT" and p.startswith("/source-"))
    schedule = sequence.index("scheduleRun")
    log_link = sequence.index("listLogSasUrl")
    log_reads = [i for i, (m, p) in enumerate(calls) if m == "GET" and p.startswith("/logs/")]
    final = max(i for i, name in enumerate(sequence) if name == "ca1")
    assert upload < put_blob < schedule < log_link < min(log_reads) <= max(log_reads) < final, calls
    assert len(log_reads) >= 2, "the log was not read while the run went on"

    body = deployment.requests("POST", "/scheduleRun")[0]["body"]
    assert body["type"] == "DockerBuildRequest"
    assert body["dockerFilePath"] == "Dockerfile"
    assert body["platform"] == {"os": "Linux", "architecture": "amd64"}
    assert body["imageNames"] == [rendered.reference] and body["isPushEnabled"] is True
    relative = deployment.requests("POST", "/listBuildSourceUploadUrl")
    assert relative and body["sourceLocation"].startswith("source/") and body["sourceLocation"].endswith(".tar.gz")

    # The uploaded context honours the .dockerignore: the Dockerfile it renders and the files it
    # copies in, nothing else.
    blob = deployment.standin.app.store.blobs[f"source-{registry}/{body['sourceLocation']}"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.data))) as tar:
        names = sorted(tar.getnames())
        dockerfile = tar.extractfile("Dockerfile").read().decode()
    assert names == sorted([".dockerignore", "Dockerfile", *rendered.files])
    assert dockerfile == rendered.dockerfile


def test_remote_build_streams_the_run_log_through_the_reporter(deployment, standin_env):
    from mlflow_aca import deployment as deployments
    from mlflow_aca import image
    from mlflow_aca.config import load_settings
    from mlflow_aca.reporting import SilentReporter

    registry = _registry(deployment)
    deployment.standin.set_latency(0.01)
    ctx = deployments.connect(load_settings(deployment.directory / "mlflow-aca.toml"))
    reporter = SilentReporter()
    try:
        result = image.build_remote(ctx, reporter, image.BuildOptions())
    finally:
        deployments.close(ctx)
    assert result.status == "Succeeded"
    steps = [line for line in reporter.lines if line.startswith("Step ")]
    assert steps and steps[0].startswith("Step 1/") and " : FROM " in steps[0]
    assert f"Successfully pushed image: {registry}.azurecr.io/{_rendered(deployment).reference}" in \
        " ".join(reporter.lines)
    assert reporter.lines[-1] == "Run ID: ca1 was successful after 2s"


def test_schedule_run_answered_202_is_followed_to_its_run(deployment):
    # Registries_ScheduleRun may answer 202 and a link to poll (x-ms-long-running-operation in the
    # 2019-06-01-preview spec) as well as 200 and the Run: both forms end in the same build.
    _registry(deployment)
    deployment.standin.add_fault(faults.schedule_run_accepted())
    data = deployment.ok("build", "--remote", env={"DOCKER_HOST": DEAD_ENGINE})
    assert deployment.standin.faults() == []
    assert (data["status"], data["run_id"]) == ("Succeeded", "ca1")
    assert [r["status"] for r in deployment.requests("POST", "/scheduleRun")] == [202]
    assert deployment.requests("GET", "/operationResults/"), "the Location link was not followed"


def test_a_failed_run_reports_its_log_and_exit_3(deployment):
    _registry(deployment)
    deployment.standin.add_fault(faults.run_failed("ERROR: No matching distribution found for nothing==0"))
    result = deployment.cli("build", "--remote", env={"DOCKER_HOST": DEAD_ENGINE})
    assert result.code == 3, result
    assert "ACR Tasks run ca1 ended Failed: failed during run, err: exit status 1" in result.stderr
    assert "ERROR: No matching distribution found for nothing==0" in result.stderr  # from the log's tail
    assert "[RunFailed]" in result.stderr and "Traceback" not in result.stderr


def test_tasks_not_allowed_offers_the_local_build(deployment, product_image, docker_config):
    _registry(deployment, **product_image.settings)
    deployment.standin.add_fault(faults.tasks_not_allowed(times=3))
    env = {"DOCKER_CONFIG": str(docker_config)}

    refused = deployment.cli("build", "--remote", "--json", env=env)
    assert refused.code == 3, refused
    error = refused.json["error"]
    assert error["code"] == "TasksOperationsNotAllowed"
    assert "ACR Tasks requests for the registry are not permitted" in error["message"]
    assert "--local" in error["hint"] and "A Docker engine answers here" in error["hint"]

    no_engine = deployment.cli("build", "--remote", env={**env, "DOCKER_HOST": DEAD_ENGINE})
    assert no_engine.code == 3 and "No Docker engine answers here either" in no_engine.stderr, no_engine

    # --yes takes the offer: the local engine builds instead (a cache hit for the product image).
    accepted = deployment.cli("build", "--remote", "--yes", "--json", env=env, timeout=600)
    assert accepted.code == 0, accepted
    assert accepted.json["data"]["mode"] == "local"
    assert accepted.json["data"]["image"] == product_image.reference


def test_build_without_an_engine_goes_remote(deployment):
    _registry(deployment)
    result = deployment.cli("build", env={"DOCKER_HOST": DEAD_ENGINE})
    assert result.code == 0, result
    assert "No Docker engine answers here: building in Azure with ACR Tasks" in result.stderr
    assert "Built and pushed" in result.stdout and "run ca1" in result.stdout
    assert JWT_PREFIX not in result.stdout + result.stderr


def test_up_remote_builds_in_acr_tasks_once_the_registry_exists(deployment):
    deployment.write_config(resource_group=RG, registry_name="acrupremote" + uuid.uuid4().hex[:6])
    data = deployment.ok("up", "--remote", env={"DOCKER_HOST": DEAD_ENGINE})
    outcomes = {row["key"]: row["outcome"] for row in data["resources"]}
    assert outcomes["image"] == "built"
    registry_put = deployment.requests("PUT", "/Microsoft.ContainerRegistry/registries/")[0]
    schedule = deployment.requests("POST", "/scheduleRun")[0]
    assert registry_put["time"] <= schedule["time"]
    app = deployment.one("Microsoft.App/containerApps")
    assert app["properties"]["template"]["containers"][0]["image"] == data["image"]
    assert data["image"].endswith(_rendered(deployment).reference)


@pytest.mark.docker
def test_up_remote_rerun_finds_the_image_present(deployment, acr, product_image, docker_config):
    deployment.write_config(**{**product_image.settings, "resource_group": RG,
                               "registry_name": "acrupremote" + uuid.uuid4().hex[:6],
                               "image_repository": f"mlflow-server-{uuid.uuid4().hex[:8]}"})
    env = {"DOCKER_CONFIG": str(docker_config)}
    deployment.ok("provision")
    deployment.ok("build", "--local", env=env)
    deployment.ok("push", env=env, timeout=600)
    deployment.standin.clear_requests()
    started = time.monotonic()
    data = deployment.ok("up", "--remote", env=env)
    assert {row["key"]: row["outcome"] for row in data["resources"]}["image"] == "present"
    assert not deployment.requests("POST", "/scheduleRun")
    assert time.monotonic() - started < 60


def test_tasks_not_allowed_on_a_terminal_asks_before_building_locally(deployment, product_image, docker_config):
    from tests.clirunner import run_cli_on_tty

    _registry(deployment, **product_image.settings)
    deployment.standin.add_fault(faults.tasks_not_allowed())
    result = run_cli_on_tty("build", "--remote", cwd=deployment.directory, timeout=120,
                            env=deployment.env(DOCKER_CONFIG=str(docker_config)),
                            answers=[("Build locally instead?", "y")])
    text = result.transcript
    assert result.code == 0, text
    assert result.answered and "ACR Tasks requests for the registry are not permitted" in text
    assert f"Built {product_image.reference}" in text
    assert re.search(r"Step (\d+)/\1 : CMD", text), text  # the build output was shown live, to its last step
