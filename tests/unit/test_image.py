"""The image domain without an engine or Azure: build options, the build context, reading the
engine's build and push streams, the steps `up` gets, and the CLI's usage errors."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from mlflow_aca import image
from mlflow_aca.cloud import KNOWN_CLOUDS
from mlflow_aca.config import Settings
from mlflow_aca.errors import UsageError
from mlflow_aca.reporting import SilentReporter
from mlflow_aca.resources.base import Context
from mlflow_aca.template import render_image
from tests.clirunner import run_cli
from tests.values import SUBSCRIPTION


def settings(**extra) -> Settings:
    return Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION, **extra)


class RecordingReporter(SilentReporter):
    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[str, str]] = []

    def update(self, key: str, message: str) -> None:
        self.updates.append((key, message))


# -- options --------------------------------------------------------------------------------------------
def test_build_args_take_values_or_the_environment():
    options = image.BuildOptions.from_flags(build_args=["PIP_INDEX_URL=https://pypi.example/simple", "HTTPS_PROXY"],
                                            environ={"HTTPS_PROXY": "http://user:secret@proxy:3128"})
    assert options.build_args == {"PIP_INDEX_URL": "https://pypi.example/simple",
                                  "HTTPS_PROXY": "http://user:secret@proxy:3128"}
    assert options.pull is False and options.no_cache is False


@pytest.mark.parametrize("bad", ["=value", "NOT A NAME=1", "MISSING_FROM_ENV"])
def test_bad_build_args_are_usage_errors(bad):
    with pytest.raises(UsageError):
        image.BuildOptions.from_flags(build_args=[bad], environ={})


# -- build context ------------------------------------------------------------------------------------------
def test_build_context_is_the_dockerfile_its_files_and_a_dockerignore_that_keeps_everything_else_out():
    from mlflow_aca.docker_engine import pack_context
    from mlflow_aca.image_files import PLUGIN_WHEEL

    rendered = render_image(settings())
    lock = "mlflow-3.17.2-py3.12.txt"  # the default MLflow version installs from its lock
    assert list(rendered.files) == [PLUGIN_WHEEL, lock]
    with image.build_context(rendered) as context:
        assert (context / "Dockerfile").read_text() == rendered.dockerfile
        (context / "stray.txt").write_text("must not be sent")
        (context / "secrets").mkdir()
        (context / "secrets" / "key.pem").write_text("must not be sent either")
        archive = pack_context(context)
    assert not context.exists()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        assert sorted(tar.getnames()) == sorted([".dockerignore", "Dockerfile", PLUGIN_WHEEL, lock])
        assert tar.extractfile("Dockerfile").read().decode() == rendered.dockerfile
        assert tar.extractfile(PLUGIN_WHEEL).read() == rendered.files[PLUGIN_WHEEL]
        assert tar.extractfile(lock).read() == rendered.files[lock]


def test_the_tag_follows_the_files_the_build_copies_in_not_only_the_dockerfile():
    from mlflow_aca.template import content_tag

    rendered = render_image(settings())
    assert render_image(settings()).tag == rendered.tag  # same content, same tag
    for name, data in rendered.files.items():  # the plugin wheel, and the lock
        changed = {**rendered.files, name: data + b"\n"}
        assert content_tag(rendered.dockerfile, "3.17.2", changed) != rendered.tag, name


# -- the build stream ---------------------------------------------------------------------------------------
def test_build_log_splits_lines_counts_cache_hits_and_keeps_the_image_id():
    reporter = RecordingReporter()
    log = image.BuildLog(reporter, "b")
    for chunk in [{"stream": "Step 1/3 : FROM base\n"}, {"stream": " ---> 1234\nStep 2/3 : ENV A=1\n"},
                  {"stream": " ---> Using cache\n ---> 5678\nStep 3/3 : RUN echo hi"},
                  {"stream": "\n ---> Using cache\n"}, {"aux": {"ID": "sha256:abc"}},
                  {"stream": "Successfully built abc\n"}]:
        log.feed(chunk)
    log.close()
    assert reporter.lines[0] == "Step 1/3 : FROM base"
    assert "Step 3/3 : RUN echo hi" in reporter.lines
    assert ("b", "Step 3/3 : RUN echo hi") in reporter.updates
    assert log.image_id == "sha256:abc" and log.all_cached and log.error is None


def test_build_log_error_keeps_dockers_message_and_the_meaningful_tail():
    log = image.BuildLog(SilentReporter(), "b")
    log.feed({"stream": "Step 4/4 : RUN pip install nothing\n ---> Running in 42\n"})
    log.feed({"stream": "ERROR: No matching distribution found for nothing\n"})
    log.feed({"stream": "Removing intermediate container 42\n"})
    log.feed({"errorDetail": {"code": 1, "message": "The command '/bin/sh -c pip install nothing' returned a "
                              "non-zero code: 1"}, "error": "The command ... returned a non-zero code: 1"})
    assert log.error == "The command '/bin/sh -c pip install nothing' returned a non-zero code: 1"
    quoted = log.quote_tail()
    assert "ERROR: No matching distribution found for nothing" in quoted
    assert "Removing intermediate container" not in quoted and "Running in" not in quoted
    assert not log.all_cached
    assert log.failure == log.error  # no self-check spoke


def test_a_failed_image_self_check_is_the_failure_not_the_command_that_ran_it():
    log = image.BuildLog(SilentReporter(), "b")
    log.feed({"stream": 'Step 9/12 : RUN fail() { echo "mlflow-aca image check: $*"; exit 1; }; ldd ...\n'})
    log.feed({"stream": "mlflow-aca image check: the ODBC driver /opt/x.so cannot load, missing: libssl.so.1.0.2\n"})
    log.feed({"error": "The command '/bin/sh -c fail() { echo ...' returned a non-zero code: 1"})
    assert log.failure == "the image failed its self-check: the ODBC driver /opt/x.so cannot load, missing: libssl.so.1.0.2"


# -- the push stream ----------------------------------------------------------------------------------------
def test_push_progress_per_layer_digest_and_counts():
    reporter = RecordingReporter()
    progress = image.PushProgress(reporter, "p", interval=0)
    for chunk in [{"status": "The push refers to repository [r/x]"},
                  {"status": "Preparing", "progressDetail": {}, "id": "aaa"},
                  {"status": "Preparing", "progressDetail": {}, "id": "bbb"},
                  {"status": "Pushing", "progressDetail": {"current": 5_000_000, "total": 10_000_000}, "id": "aaa"},
                  {"status": "Layer already exists", "progressDetail": {}, "id": "bbb"},
                  {"status": "Pushing", "progressDetail": {"current": 12_000_000, "total": 10_000_000}, "id": "aaa"},
                  {"status": "Pushed", "progressDetail": {}, "id": "aaa"},
                  {"status": "Mounted from other/repo", "progressDetail": {}, "id": "ccc"},
                  {"status": "t: digest: sha256:d size: 1"},
                  {"progressDetail": {}, "aux": {"Tag": "t", "Digest": "sha256:d", "Size": 1}}]:
        progress.feed(chunk)
    shown = [message for _, message in reporter.updates]
    assert any("aaa  Pushing 5.0/10.0 MB" in message and "bbb  Preparing" in message for message in shown)
    assert any("aaa  Pushing 10.0/10.0 MB" in message for message in shown)  # capped
    assert progress.digest == "sha256:d" and progress.error is None
    assert (progress.count("Pushed"), progress.count("Layer already exists"), progress.count("Mounted from")) == \
        (1, 1, 1)


def test_push_progress_catches_an_error_chunk():
    progress = image.PushProgress(SilentReporter(), "p")
    progress.feed({"status": "Preparing", "progressDetail": {}, "id": "aaa"})
    progress.feed({"errorDetail": {"message": "unauthorized: authentication required"},
                   "error": "unauthorized: authentication required"})
    assert progress.error == "unauthorized: authentication required"


# -- the steps `up` runs ---------------------------------------------------------------------------------------
def _context() -> Context:
    return Context(settings=settings(), cloud=KNOWN_CLOUDS["AzureCloud"], session=None)


def test_local_image_steps_build_at_once_and_push_once_the_registry_exists():
    steps = image.image_steps(_context(), SilentReporter(), remote=False)
    assert [(s.key, s.deps) for s in steps] == [("image_build", ()), ("image_push", ("image_build", "registry"))]
    assert steps[0].label.startswith("build image mlflow-server:")


def test_remote_image_steps_are_one_run_after_the_registry():
    steps = image.image_steps(_context(), SilentReporter(), remote=True)
    assert [(s.key, s.deps) for s in steps] == [("image", ("registry",))]


def test_tasks_not_allowed_hint_depends_on_the_engine():
    assert "--local" in image.TasksNotAllowed("refused", local_possible=True).hint
    assert "either" in image.TasksNotAllowed("refused", local_possible=False).hint


# -- registry sign-in helpers ---------------------------------------------------------------------------------
def test_tenant_is_read_from_the_entra_token_without_verifying_it():
    import base64
    import json

    from mlflow_aca.azure.acr_auth import RegistryLogin, _claim

    payload = base64.urlsafe_b64encode(json.dumps({"tid": "t-1"}).encode()).decode().rstrip("=")
    assert _claim(f"eyJhbGciOiJub25lIn0.{payload}.sig", "tid") == "t-1"
    assert _claim("not-a-jwt", "tid") is None
    login = RegistryLogin("r.azurecr.io", "refresh-secret")
    assert "refresh-secret" not in repr(login)
    assert login.auth_config() == {"username": "00000000-0000-0000-0000-000000000000",
                                   "password": "refresh-secret", "serveraddress": "r.azurecr.io"}


# -- CLI usage ------------------------------------------------------------------------------------------------
def test_build_arg_without_equals_or_environment_is_a_usage_error(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text('name = "mlflow"\nlocation = "westeurope"\n')
    result = run_cli("build", "--local", "--build-arg", "NOPE_NOT_SET", cwd=tmp_path,
                     env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.code == 2, result
    assert "NOPE_NOT_SET" in result.stderr and "Traceback" not in result.stderr


def test_a_check_line_after_a_steps_stderr_is_still_recognised():
    # What the engine streamed when gpg had warned on stderr just before the key check failed.
    log = image.BuildLog(RecordingReporter(), "b")
    log.feed({"stream": "\x1b[91mgpg: /tmp/tmp.Px3jQPnQ4l/trustdb.gpg: trustdb created\n"})
    log.feed({"stream": "\x1b[0mmlflow-aca image check: the key at http://mirror/key.asc has fingerprint A, "
                        "expected B (odbc_key_fingerprint)\n"})
    log.feed({"errorDetail": {"code": 1, "message": "The command '/bin/sh -c apt-get update ...' returned a "
                                                    "non-zero code: 1"}, "error": "..."})
    log.close()
    assert log.failure == ("the image failed its self-check: the key at http://mirror/key.asc has fingerprint A, "
                           "expected B (odbc_key_fingerprint)")
