"""The container registry's data plane and ACR Tasks, through the real SDK clients and plain HTTPS:
the login-server front's token endpoints (no real registry needed for these), the Tasks run
sequence, the blob host's SAS checks, and the faults."""

import base64
import gzip
import io
import json
import tarfile

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from . import faults
from .conftest import LOCATION

ACR_USER = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def tasks(azure):
    from azure.mgmt.containerregistrytasks import ContainerRegistryTasksMgmtClient

    return ContainerRegistryTasksMgmtClient(azure.credential, azure.subscription_id, **azure.kwargs)


@pytest.fixture
def registry(azure, group):
    return azure.acr.registries.begin_create(group.name, "acrtasks01", {"location": LOCATION,
                                                                       "sku": {"name": "Basic"}}).result()


def _context(dockerfile: str | None = "FROM base:1\nRUN echo hi \\\n && echo there\nCMD [\"x\"]\n") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in ({"Dockerfile": dockerfile} if dockerfile is not None else {"other": "x"}).items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(buffer.getvalue())


def _schedule(tasks, group, archive: bytes, **request):
    from azure.mgmt.containerregistrytasks.models import DockerBuildRequest, PlatformProperties
    from azure.storage.blob import BlobClient

    upload = tasks.registries.get_build_source_upload_url(group.name, "acrtasks01")
    BlobClient.from_blob_url(upload.upload_url).upload_blob(archive)
    body = {"docker_file_path": "Dockerfile", "platform": PlatformProperties(os="Linux", architecture="amd64"),
            "image_names": ["app:1"], "is_push_enabled": True, "source_location": upload.relative_path, **request}
    return tasks.registries.schedule_run(group.name, "acrtasks01", DockerBuildRequest(**body))


def _log(tasks, group, run_id: str) -> tuple[str, dict]:
    from azure.storage.blob import BlobClient

    link = tasks.runs.get_log_sas_url(group.name, "acrtasks01", run_id).log_link
    blob = BlobClient.from_blob_url(link)
    properties = blob.get_blob_properties()
    return blob.download_blob().readall().decode(), dict(properties.metadata)


# -- ACR Tasks --------------------------------------------------------------------------------------------
def test_a_quick_run_goes_from_upload_to_a_pushed_digest(standin, tasks, group, registry):
    run = _schedule(tasks, group, _context())
    assert (run.name, run.properties.status) == ("ca1", "Succeeded")  # latency 0: done at once
    done = tasks.runs.get(group.name, "acrtasks01", "ca1")
    image = done.properties.output_images[0]
    assert (image.registry, image.repository, image.tag) == (registry.login_server, "app", "1")
    assert image.digest.startswith("sha256:")
    text, metadata = _log(tasks, group, "ca1")
    assert metadata == {"Complete": "successful"}
    assert "Step 2/3 : RUN echo hi && echo there" in text
    assert f"Successfully pushed image: {registry.login_server}/app:1" in text
    assert _schedule(tasks, group, _context()).name == "ca2"


def test_a_run_log_grows_until_complete(standin, tasks, group, registry):
    standin.set_latency(0.01)  # 1.5 s
    run = _schedule(tasks, group, _context())
    assert run.properties.status in ("Queued", "Running")
    partial, metadata = _log(tasks, group, run.name)
    assert metadata == {} and "Run ID" not in partial


def test_run_failures(standin, tasks, group, registry):
    standin.add_fault(faults.run_failed("ERROR: nothing==0 not found"))
    failed = _schedule(tasks, group, _context())
    assert failed.properties.status == "Failed" and failed.properties.run_error_message
    text, metadata = _log(tasks, group, failed.name)
    assert metadata == {"Complete": "failed"} and "ERROR: nothing==0 not found" in text

    missing = _schedule(tasks, group, _context(dockerfile=None))
    assert missing.properties.status == "Failed"
    assert "lstat /workspace/Dockerfile: no such file or directory" in _log(tasks, group, missing.name)[0]


def test_requests_that_acr_refuses(standin, tasks, group, registry):
    from azure.mgmt.containerregistrytasks.models import DockerBuildRequest, PlatformProperties

    never_uploaded = DockerBuildRequest(docker_file_path="Dockerfile", platform=PlatformProperties(os="Linux"),
                                        source_location="source/nothing.tar.gz")
    with pytest.raises(HttpResponseError) as refused:
        tasks.registries.schedule_run(group.name, "acrtasks01", never_uploaded)
    assert refused.value.error.code == "InvalidSourceLocation"

    standin.add_fault(faults.tasks_not_allowed())
    with pytest.raises(HttpResponseError) as trial:
        _schedule(tasks, group, _context())
    assert (trial.value.status_code, trial.value.error.code) == (400, "TasksOperationsNotAllowed")


def test_sas_urls_are_checked(standin, standin_env, tasks, group, registry):
    upload = tasks.registries.get_build_source_upload_url(group.name, "acrtasks01")
    forged = upload.upload_url.split("sig=")[0] + "sig=forged"
    answer = requests.put(forged, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert answer.status_code == 403 and answer.headers["x-ms-error-code"] == "AuthenticationFailed"
    assert requests.put(upload.upload_url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"},
                        timeout=10).status_code == 201
    assert requests.get(upload.upload_url, timeout=10).status_code == 403  # write-only SAS


# -- the login server's token endpoints ------------------------------------------------------------------
def _exchange(standin, front, token):
    return requests.post(f"https://{front['login_server']}/oauth2/exchange", timeout=10, data={
        "grant_type": "access_token", "service": front["login_server"], "tenant": standin.tenant_id,
        "access_token": token})


def _granted(front, refresh: str, scope: str) -> list:
    answer = requests.get(f"https://{front['login_server']}/oauth2/token", timeout=10,
                          params={"service": front["login_server"], "scope": scope},
                          auth=(ACR_USER, refresh))
    assert answer.status_code == 200, answer.text
    payload = answer.json()["access_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["access"]


def test_token_exchange_and_what_tokens_grant(standin, standin_env, azure, group, registry):
    front = standin.attach_registry("127.0.0.1:9")  # no registry needed behind it for tokens
    assert azure.acr.registries.get(group.name, "acrtasks01").login_server == front["login_server"]
    wrong_audience = _exchange(standin, front, standin.issue_token())
    assert wrong_audience.status_code == 401 and "wrong audience" in wrong_audience.text
    assert _exchange(standin, front, "forged.token.here").status_code == 401

    operator = _exchange(standin, front, standin.issue_token("https://containerregistry.azure.net")).json()
    scope = "repository:mlflow:pull,push"
    assert _granted(front, operator["refresh_token"], scope) == [
        {"type": "repository", "name": "mlflow", "actions": ["pull", "push"]}]

    identity = group.identity
    as_identity = _exchange(standin, front, standin.issue_token("https://containerregistry.azure.net",
                                                                client_id=identity.client_id)).json()
    assert _granted(front, as_identity["refresh_token"], scope)[0]["actions"] == []
    azure.auth.role_assignments.create(registry.id, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", {
        "role_definition_id": f"/subscriptions/{standin.subscription_id}/providers/Microsoft.Authorization/"
                              "roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",  # AcrPull
        "principal_id": identity.principal_id, "principal_type": "ServicePrincipal"})
    assert _granted(front, as_identity["refresh_token"], scope)[0]["actions"] == ["pull"]

    refused = requests.get(f"https://{front['login_server']}/oauth2/token", timeout=10,
                           params={"service": front["login_server"], "scope": scope}, auth=(ACR_USER, "wrong"))
    assert refused.status_code == 401
    assert requests.get(f"https://{front['login_server']}/v2/", timeout=10).status_code == 502  # nothing at :9
    exchanges = standin.requests("POST", "/oauth2/exchange")
    assert exchanges and all("access_token=%2A%2A%2A" in e["body"] for e in exchanges)
