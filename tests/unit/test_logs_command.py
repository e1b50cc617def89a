"""`mlflow-aca logs`: the stream URL rule, and what is refused before any Azure call."""

import pytest

from mlflow_aca.azure.logstream import stream_url
from mlflow_aca.errors import OperationError
from tests.clirunner import run_cli

RESOURCE = "/subscriptions/s/resourceGroups/rg/containerApps/app/revisions/r/replicas/x/containers/c"


def test_an_endpoint_that_is_the_stream_is_used_as_it_is():
    endpoint = "https://westeurope.azurecontainerapps.dev" + RESOURCE + "/logstream"
    assert stream_url(endpoint, "/ignored", "logstream") == endpoint


def test_an_endpoint_without_the_path_keeps_only_its_origin():
    # az: base_url = endpoint[:endpoint.index("/subscriptions/")], then the container's path.
    assert stream_url("https://r.logstream.azurecontainerapps.dev", RESOURCE, "logstream") == \
        "https://r.logstream.azurecontainerapps.dev" + RESOURCE + "/logstream"


@pytest.mark.parametrize("endpoint", ["http://r.example/x", "https://user:pw@r.example/x", "", "file:///etc/passwd"])
def test_the_token_only_goes_to_an_https_host(endpoint):
    with pytest.raises(OperationError) as caught:
        stream_url(endpoint, RESOURCE, "logstream")
    assert caught.value.code == "LogStreamUnavailable" and "pw" not in caught.value.message


@pytest.mark.parametrize("args", [("--tail", "301"), ("--tail", "-1"), ("--system", "--job")])
def test_usage_errors(tmp_path, args):
    result = run_cli("logs", *args, "--json", cwd=tmp_path)
    assert result.code == 2, result
    assert result.json["ok"] is False and "Traceback" not in result.output


def test_json_follow_is_refused(tmp_path):
    result = run_cli("logs", "--follow", "--json", cwd=tmp_path)
    assert result.code == 2 and result.json["error"]["code"] == "JsonFollowUnsupported", result
