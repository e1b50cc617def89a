"""Refused image pulls, as Container Apps words them, become errors that say what to do."""

from __future__ import annotations

import pytest

from mlflow_aca.config import Settings
from mlflow_aca.resources.base import Context
from mlflow_aca.distribution import locate
from mlflow_aca.resources.image_pull import parse_time, pull_error, pull_failure

LOGIN = "acrmlflow.azurecr.io"
IMAGE = f"{LOGIN}/mlflow-server:3.17.2-ab12"
CLIENT_ID = "0b5c8d1e-1111-2222-3333-444455556666"
# Azure's texts (Azure-Samples/call-center-voice-agent-accelerator#3, microsoft/azure-container-apps#646, #816).
MISSING = (f"Failed to provision revision for container app 'mlflow'. Error details: The following field(s) are "
           f"either invalid or missing. Field 'template.containers.mlflow.image' is invalid with details: "
           f"'Invalid value: \"{IMAGE}\": GET https:: MANIFEST_UNKNOWN: manifest tagged by \"3.17.2-ab12\" is not "
           f"found; map[Tag:3.17.2-ab12]';..")
DENIED = MISSING.replace('GET https:: MANIFEST_UNKNOWN: manifest tagged by "3.17.2-ab12" is not found; '
                         'map[Tag:3.17.2-ab12]', "GET https:: UNAUTHORIZED: authentication required, visit "
                         "https://aka.ms/acr/authorization for more information.")
EXPIRED = ("Failed to provision revision for container app 'mlflow'. Error details: Operation expired. Persistent "
           f"Image Pull Errors for image \"{IMAGE}\": GET https:: UNAUTHORIZED: authentication required")


@pytest.fixture
def ctx() -> Context:
    settings = Settings(name="mlflow", location="westeurope", subscription_id="00000000-0000-0000-0000-000000000001")
    context = Context(settings=settings, cloud=None, session=None)  # type: ignore[arg-type]
    context.publish("identity", {"client_id": CLIENT_ID})
    context.publish("registry", {"login_server": LOGIN})
    return context


def test_azure_texts_are_recognised():
    assert pull_failure(MISSING) == "missing"
    assert pull_failure(DENIED) == "denied"
    assert pull_failure(EXPIRED) == "denied"
    assert pull_failure("ImagePullBackOff") is None   # no reason yet: nothing to classify
    assert pull_failure("Container 'mlflow' crashed: exit code 1") is None
    assert pull_failure("") is None


def test_a_missing_image_says_push(ctx):
    error = pull_error(ctx, IMAGE, MISSING, what="the app", age=5)
    assert error.code == "ImageNotFound" and IMAGE in error.message and "MANIFEST_UNKNOWN" in error.message
    assert "mlflow-aca push" in error.hint


def test_a_young_grant_is_said_to_be_propagating(ctx):
    error = pull_error(ctx, IMAGE, EXPIRED, what="the app", age=95, waited=60)
    assert error.code == "ImagePullPending"
    assert CLIENT_ID in error.message and LOGIN in error.message and "95 s ago" in error.message
    assert "after waiting 60 s" in error.message and "few minutes" in error.hint


def test_an_old_grant_is_denied_naming_identity_and_registry(ctx):
    error = pull_error(ctx, IMAGE, DENIED, what="the app", age=3600)
    assert error.code == "ImagePullDenied"
    assert CLIENT_ID in error.message and LOGIN in error.message and "60 min ago" in error.message
    assert "UNAUTHORIZED" in error.message and "provision" in error.hint


def test_another_registry_is_not_blamed_on_acr_pull(ctx):
    error = pull_error(ctx, "private.example.io/team/mlflow:1", DENIED, what="the app", age=5)
    assert error.code == "ImagePullDenied" and "private.example.io" in error.message
    assert CLIENT_ID not in error.message


def test_other_failures_are_left_alone(ctx):
    assert pull_error(ctx, IMAGE, "Container 'mlflow' crashed: exit code 1", what="the app", age=5) is None


def test_registry_host_follows_docker_rules():
    assert locate(IMAGE).host == LOGIN
    assert locate("localhost/x:1").host == "localhost"
    assert locate("127.0.0.1:5000/x:1").host == "127.0.0.1:5000"
    assert locate("team/mlflow:1").host == "docker.io"
    assert locate("mlflow").host == "docker.io"


def test_arm_timestamps_parse():
    assert parse_time("2024-05-01T10:00:00.1234567Z").timestamp() == pytest.approx(1714557600.123456)
    assert parse_time("2024-05-01T10:00:00+00:00").timestamp() == 1714557600
    assert parse_time("yesterday") is None and parse_time("") is None
