"""The image's supply chain, checked for real (README "Image supply chain").

- `plan` and `build` say what the image does not pin (base image digest, hashed dependencies):
  the CLI against the stand-in, no engine needed.
- The repository key check: the template's own ODBC step (rendered, taken out of the
  Dockerfile) built FROM the test python base, with keys served to the build over HTTP: the
  stand-in repository's key with its fingerprint passes and installs the driver; a throwaway
  key, or the right key with a second one beside it, stops the build with the one line.
- The hashed install: the template's own lock step (COPY + RUN) run on an excerpt of the real
  lock: as shipped it installs; with one package's hashes altered pip refuses it; a base image
  whose Python is not the one its tag names is refused before pip runs.
- The product image the session builds (`product_image`, from the lock) holds exactly the
  locked versions.
"""

from __future__ import annotations

import functools
import http.server
import io
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

from tests import services

MICROSOFT = "BC528686B50D79E339D3721CEB3E94ADBE1229CF"
LOCK_311 = "mlflow-3.17.2-py3.11.txt"
LOCKS = Path(__file__).resolve().parents[2] / "templates" / "constraints"


def notices_of(data):
    return data["notices"]


# -- plan and build say what is not pinned ----------------------------------------------------------------
def test_plan_says_when_the_base_image_is_not_pinned_by_digest(deployment):
    data = deployment.ok("plan")
    assert notices_of(data) == [
        "base image python:3.12.12-slim-bookworm is not pinned by digest: a rebuild may get different contents; "
        "pin it with base_image = 'python:3.12.12-slim-bookworm@sha256:…' (`docker buildx imagetools inspect "
        "python:3.12.12-slim-bookworm` prints it)"]
    human = deployment.cli("plan")
    assert human.code == 0, human
    assert "Notice: base image python:3.12.12-slim-bookworm is not pinned by digest" in human.stdout
    # Pinned: nothing to say. A plan for a given image (--image) is not about the template's.
    deployment.write_config(base_image="python:3.12.12-slim-bookworm@sha256:" + "0123456789abcdef" * 4)
    assert notices_of(deployment.ok("plan")) == []
    deployment.write_config(base_image="python:3.12.12-slim-bookworm")
    image = deployment.publish_public_image()
    assert notices_of(deployment.ok("plan", "--image", image)) == []


def test_build_says_when_the_dependencies_are_not_hash_pinned(deployment):
    deployment.write_config(base_image="python:3.12.12-slim-bookworm@sha256:" + "0123456789abcdef" * 4)
    assert notices_of(deployment.ok("build", "--dry-run")) == []
    deployment.write_config(mlflow_version="3.17.1")
    [notice] = notices_of(deployment.ok("build", "--dry-run"))
    assert notice.startswith("the image's Python packages are not hash-pinned: mlflow-aca ships no lock for "
                             "MLflow 3.17.1")
    human = deployment.cli("build", "--dry-run")
    assert human.code == 0, human
    assert "Notice: the image's Python packages are not hash-pinned" in human.stderr
    assert '"mlflow[azure]==3.17.1"' in human.stdout


# -- builds -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def python_base(docker_client) -> str:
    return services.python_image(docker_client)


class KeyServer:
    """Serves files to builds over HTTP at the Docker bridge gateway (as the stand-in of
    Microsoft's repository is served)."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="keys-"))
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://{services.setting('DOCKER_GATEWAY') or '172.17.0.1'}:{self.server.server_port}"

    def serve(self, name: str, data: bytes) -> str:
        (self.directory / name).write_bytes(data)
        return f"{self.base}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.directory, ignore_errors=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def key_server():
    server = KeyServer()
    yield server
    server.close()


def throwaway_key() -> bytes:
    """A fresh signing key from the host's gpg, armored: not the repository's."""
    with tempfile.TemporaryDirectory(prefix="gpg-") as home:
        gpg = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        subprocess.run([*gpg, "--quick-gen-key", "Not Microsoft <nobody@example.com>", "ed25519", "sign", "never"],
                       check=True, capture_output=True)
        return subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout


def rendered_steps(tmp_path: Path, **settings) -> tuple[list[dict], dict[str, bytes]]:
    """The rendered Dockerfile's instructions (dockerfile-parse) and its build-context files."""
    from dockerfile_parse import DockerfileParser

    from mlflow_aca.config import Settings
    from mlflow_aca.template import render_image

    image = render_image(Settings(name="mlflow", location="westeurope", **settings))
    parser = DockerfileParser(path=str(tmp_path / "Dockerfile"))
    parser.content = image.dockerfile
    return parser.structure, image.files


def build(client, dockerfile: str, files: dict[str, bytes] | None = None) -> tuple[bool, str]:
    """Build from Dockerfile text and files; (succeeded, the whole log). Never pulls."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    archive.seek(0)
    log, error, image_id = [], None, None
    for chunk in client.api.build(fileobj=archive, custom_context=True, rm=True, forcerm=True, pull=False,
                                  decode=True):
        log.append(chunk.get("stream", ""))
        error = chunk.get("error", error)
        image_id = (chunk.get("aux") or {}).get("ID", image_id)
    if image_id and error is None:
        client.images.remove(image_id, force=True)
    return error is None, "".join(log) + (error or "")


def check_line(log: str) -> str:
    # Without the builder's colour codes around a step's stderr (image.py, _COLOUR).
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
    return next(line for line in plain.splitlines() if line.startswith("mlflow-aca image check: "))


def odbc_step(tmp_path: Path, **settings) -> str:
    structure, _files = rendered_steps(tmp_path, install_odbc_driver=True, **settings)
    return next(i["value"] for i in structure if i["instruction"] == "RUN" and "msodbcsql18" in i["value"])


@pytest.mark.docker
@pytest.mark.slow
def test_the_repository_key_must_have_the_configured_fingerprint(tmp_path, docker_client, python_base, key_server):
    repository = services.require_ms_repository()
    with urllib.request.urlopen(repository.key_url, timeout=10) as response:
        repository_key = response.read()
    stranger = throwaway_key()
    [stranger_fingerprint] = services.key_fingerprints(stranger)

    # A key that is not the expected one: the build stops before the keyring is written.
    url = key_server.serve("stranger.asc", stranger)
    step = odbc_step(tmp_path, base_image=python_base, odbc_repository_url=repository.repository_url,
                     odbc_key_url=url, odbc_key_fingerprint=repository.key_fingerprint)
    ok, log = build(docker_client, f"FROM {python_base}\nRUN {step}\n")
    assert not ok
    assert check_line(log) == (f"mlflow-aca image check: the key at {url} has fingerprint {stranger_fingerprint}, "
                               f"expected {repository.key_fingerprint} (odbc_key_fingerprint)")

    # The expected key with another beside it: the other would be trusted too, so it is refused.
    url = key_server.serve("two.asc", repository_key + stranger)
    step = odbc_step(tmp_path, base_image=python_base, odbc_repository_url=repository.repository_url,
                     odbc_key_url=url, odbc_key_fingerprint=repository.key_fingerprint)
    ok, log = build(docker_client, f"FROM {python_base}\nRUN {step}\n")
    assert not ok
    assert f"has fingerprint {repository.key_fingerprint} {stranger_fingerprint}, expected" in check_line(log)

    # The repository's key with its fingerprint (the mirror case): the driver installs from it.
    step = odbc_step(tmp_path, base_image=python_base, **repository.settings())
    ok, log = build(docker_client, f"FROM {python_base}\nRUN {step} && odbcinst -q -d\n")
    assert ok, log
    assert "[ODBC Driver 18 for SQL Server]" in log


@pytest.mark.docker
@pytest.mark.slow
def test_the_default_fingerprint_refuses_a_key_that_is_not_microsofts(tmp_path, docker_client, python_base):
    # The stand-in's key at Microsoft's default fingerprint: what a build pointed at a
    # repository signed by someone else meets.
    repository = services.require_ms_repository()
    step = odbc_step(tmp_path, base_image=python_base, odbc_repository_url=repository.repository_url,
                     odbc_key_url=repository.key_url)
    ok, log = build(docker_client, f"FROM {python_base}\nRUN {step}\n")
    assert not ok
    assert check_line(log) == (f"mlflow-aca image check: the key at {repository.key_url} has fingerprint "
                               f"{repository.key_fingerprint}, expected {MICROSOFT} (odbc_key_fingerprint)")


def lock_excerpt(names: tuple[str, ...], *, tamper: str | None = None) -> bytes:
    """The named packages' entries of the real lock (hashes as shipped), one package's hashes
    altered when `tamper` names it."""
    text = (LOCKS / LOCK_311).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
    chosen = [entry for entry in entries if entry.split("==")[0] in names]
    assert len(chosen) == len(names)
    if tamper:
        # Flip the last digit of every hash of that package: no file of it can match.
        chosen = [re.sub(r"([0-9a-f]{63})([0-9a-f])", lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1"),
                         entry) if entry.startswith(tamper + "==") else entry for entry in chosen]
    return ("\n".join(chosen) + "\n").encode()


def lock_steps(tmp_path: Path, base: str) -> tuple[str, str]:
    """The template's COPY of the lock and the RUN that installs from it, for this base image."""
    structure, files = rendered_steps(tmp_path, base_image=base)
    assert any(name.endswith(".txt") for name in files), "no lock for this base image"
    copy = next(i["content"] for i in structure if i["instruction"] == "COPY" and ".txt" in i["value"])
    run = next(i["content"] for i in structure if i["instruction"] == "RUN" and "--require-hashes" in i["value"])
    return copy, run


@pytest.mark.docker
@pytest.mark.slow
def test_the_locked_install_refuses_a_file_whose_hash_is_not_in_the_lock(tmp_path, docker_client, python_base):
    assert python_base.endswith(":3.11-bookworm")  # the lock the tests' base image gets
    copy, run = lock_steps(tmp_path, python_base)
    dockerfile = f"FROM {python_base}\n{copy}{run}"
    ok, log = build(docker_client, dockerfile, {LOCK_311: lock_excerpt(("six", "idna"))})
    assert ok, log
    ok, log = build(docker_client, dockerfile, {LOCK_311: lock_excerpt(("six", "idna"), tamper="idna")})
    assert not ok
    assert "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE" in log
    assert "idna==3.20 from" in log and "Expected sha256" in log, log[-2000:]


@pytest.mark.docker
@pytest.mark.slow
def test_a_base_image_whose_python_is_not_the_one_its_tag_names_is_refused(tmp_path, docker_client, python_base):
    mislabelled = "mlflow-aca-test/supply-chain-python:3.12-mislabelled"
    docker_client.images.get(python_base).tag(mislabelled)
    try:
        copy, run = lock_steps(tmp_path, mislabelled)
        ok, log = build(docker_client, f"FROM {mislabelled}\n{copy}{run}", {
            "mlflow-3.17.2-py3.12.txt": (LOCKS / "mlflow-3.17.2-py3.12.txt").read_bytes()})
    finally:
        docker_client.images.remove(mislabelled)
    assert not ok
    assert check_line(log) == (
        "mlflow-aca image check: the base image has Python 3.11, but the dependency lock mlflow-3.17.2-py3.12.txt "
        "is for Python 3.12 (chosen by the base image's tag); use a base image whose tag names its Python version")


@pytest.mark.docker
@pytest.mark.slow
def test_the_product_image_holds_exactly_the_locked_versions(product_image, docker_client):
    text = (LOCKS / LOCK_311).read_text()
    locked = {_normal(name): version for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M)}
    frozen = services.run_container(docker_client, product_image.reference,
                                    ["sh", "-c", f"pip freeze && test -f /usr/local/share/mlflow-aca/{LOCK_311}"])
    installed = {_normal(name): version for name, version
                 in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", frozen.decode(), re.M)}
    assert installed == locked
    # Besides: the SQL plugin, from the build context (pip freeze names its file).
    assert "mlflow_aca_sql @ file:///tmp/mlflow-aca/mlflow_aca_sql-1.0.0-py3-none-any.whl" in frozen.decode()


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

