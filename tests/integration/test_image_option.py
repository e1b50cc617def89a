"""`--image` is checked before anything is written: empty is a usage error (an unset CI
variable must not fall back to the template's image), malformed is a configuration error, and
`up --image` refuses build-only options."""

import json

import pytest


def error_of(result) -> dict:
    return json.loads(result.stdout)["error"]


def test_an_empty_image_is_a_usage_error_before_any_write(deployment):
    deployment.ok("provision")
    deployment.standin.clear_requests()
    for command in ("deploy", "up"):
        result = deployment.cli(command, "--image", "", "--json")
        assert result.code == 2, result
        assert "--image is empty" in error_of(result)["message"]
    assert deployment.writes() == []


@pytest.mark.parametrize("reference", ["Not A Ref", "team/MLflow:1", "registry.example/mlflow:", "mlflow@sha256:12",
                                       "a/" + "b" * 260])
def test_a_malformed_image_is_refused_naming_it(deployment, reference):
    result = deployment.cli("deploy", "--image", reference, "--json")
    assert result.code == 1, result
    error = error_of(result)
    assert error["code"] == "InvalidImageReference" and "--image" in error["message"]
    assert deployment.requests() == []   # refused before Azure is asked anything


def test_up_with_an_image_refuses_build_options(deployment):
    for flags in (["--no-cache"], ["--build-arg", "A=1"], ["--remote"], ["--local"]):
        result = deployment.cli("up", "--image", "registry.example:5000/team/mlflow:3.17.2", *flags, "--json")
        assert result.code == 2, result
        assert "only apply to a build" in error_of(result)["message"]
    assert deployment.requests() == []


def test_well_formed_references_pass_the_check():
    from mlflow_aca.imageref import checked_image

    for reference in ("mlflow", "registry.example:5000/team/mlflow:3.17.2", "acrx.azurecr.io/mlflow-server:3.17.2-ab12",
                      "ghcr.io/org/img@sha256:" + "a" * 64, "localhost/x__y.z-1:T_1.0"):
        assert checked_image(reference) == reference
    assert checked_image(None) is None
