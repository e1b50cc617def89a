"""Microsoft's real ODBC driver in the product image, on a base image that has no Kerberos.

The images are built by the real CLI (`mlflow-aca build --local`) from the product template,
installing msodbcsql18 from the local stand-in of packages.microsoft.com through the two
configuration keys a mirror user would set (odbc_repository_url, odbc_key_url):

- on `python-nokrb`, a base whose Python is not Debian's and which therefore has no
  libgssapi-krb5-2 and no libcurl4, as python:3.13-slim (scripts/test-services.sh,
  build_nokrb_python_image): the driver must load and libcurl must be loadable, both needed
  for the managed-identity sign-in (notes/odbc-and-sql.md);
- from a build of the same package whose driver needs a library no image has (libssl.so.1.0.2,
  as Microsoft's 17.3 build did): the image's self-check must fail the build with one clear
  line, and that line must reach the user in the CLI's error.

Each image is built once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import services
from tests.clirunner import CliResult, run_cli
from tests.integration.images import BUILD_TIMEOUT, write_config

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DRIVER = "ODBC Driver 18 for SQL Server"
REPOSITORY = "mlflow-aca-test/mlflow-server-odbc"

# Run inside the image: load libcurl as the driver does (dlopen), then make the driver manager
# load the driver and connect to a port that accepts and closes at once. A driver that loads
# fails with 08001 (the handshake before login failed) within a second; one that cannot load
# fails with 01000 "Can't open lib ... : file not found". (To a port nobody listens on, the
# driver keeps retrying until the login timeout: HYT00.)
PROBE = f"""
import ctypes, json, socket, threading, pyodbc
ctypes.CDLL("libcurl.so.4")
server = socket.create_server(("127.0.0.1", 0))
def close_each():
    while True:
        server.accept()[0].close()
threading.Thread(target=close_each, daemon=True).start()
port = server.getsockname()[1]
try:
    pyodbc.connect(f"Driver={{{{{DRIVER}}}}};Server=tcp:127.0.0.1,{{port}};Encrypt=yes", timeout=10)
    print(json.dumps({{"connected": True}}))
except pyodbc.Error as error:
    print(json.dumps({{"sqlstate": error.args[0], "message": error.args[1]}}))
"""


def _build(directory: Path, docker_config: Path, settings: dict) -> CliResult:
    write_config(directory, {"name": "mlflow", "location": "westeurope", "install_odbc_driver": True,
                             "image_repository": REPOSITORY, **settings})
    return run_cli("build", "--local", "--json", cwd=directory, env={"DOCKER_CONFIG": str(docker_config)},
                   timeout=BUILD_TIMEOUT)


@pytest.fixture(scope="session")
def nokrb_base(docker_client) -> str:
    return services.nokrb_python_image(docker_client)


@pytest.fixture(scope="session")
def nokrb_image(tmp_path_factory, nokrb_base) -> str:
    """The product template with the ODBC step on, built on the base without Kerberos."""
    repository = services.require_ms_repository()
    result = _build(tmp_path_factory.mktemp("odbc-nokrb"), tmp_path_factory.mktemp("odbc-nokrb-docker"),
                    {"base_image": nokrb_base, **repository.settings()})
    assert result.code == 0, result
    return result.json["data"]["image"]


@pytest.fixture(scope="session")
def broken_driver_build(tmp_path_factory, docker_client) -> CliResult:
    """The product template installing a driver build that cannot load (needs libssl.so.1.0.2)."""
    repository = services.require_ms_repository()
    return _build(tmp_path_factory.mktemp("odbc-broken"), tmp_path_factory.mktemp("odbc-broken-docker"),
                  {"base_image": services.python_image(docker_client),
                   **repository.settings(repository_url=repository.missing_lib_url)})


def _run(client, image: str, *command: str, user: str | None = None) -> str:
    kwargs = {"user": user} if user else {}
    return services.run_container(client, image, list(command), **kwargs).decode()


def test_the_base_has_no_kerberos_and_no_curl(docker_client, nokrb_base):
    # The premise: nothing in this base provides what the driver needs besides unixODBC.
    listed = _run(docker_client, nokrb_base, "sh", "-c",
                  "dpkg-query -W -f '${Package}\\n'; ls /usr/lib/x86_64-linux-gnu")
    for absent in ("libgssapi-krb5-2", "libkrb5-3", "libcurl4", "libtirpc3", "libgssapi_krb5.so.2",
                   "libcurl.so.4"):
        assert absent not in listed.split(), absent
    assert "Python 3" in _run(docker_client, nokrb_base, "python3", "--version")


def test_the_driver_loads_on_a_base_without_kerberos(docker_client, nokrb_image):
    outcome = json.loads(_run(docker_client, nokrb_image, "python", "-c", PROBE))
    assert outcome.get("sqlstate") == "08001", outcome
    assert f"[Microsoft][{DRIVER}]" in outcome["message"] and "handshakes before login" in outcome["message"]


def test_the_runtime_libraries_are_kept_as_manual_packages(docker_client, nokrb_image):
    # Manual, so a later `apt-get autoremove` (or a purge with --auto-remove) keeps them.
    manual = _run(docker_client, nokrb_image, "apt-mark", "showmanual", user="0").split()
    assert {"msodbcsql18", "libgssapi-krb5-2", "libcurl4"} <= set(manual)
    installed = _run(docker_client, nokrb_image, "dpkg-query", "-W", "-f", "${Package}\\n").split()
    assert "curl" not in installed and "gnupg" not in installed  # the build-time tools are gone


def test_the_self_check_fails_the_build_with_one_clear_line(broken_driver_build):
    result = broken_driver_build
    assert result.code != 0, result
    error = result.json["error"]
    assert error["code"] == "BuildFailed", error
    # The line the image's check printed, quoted in the CLI's own error message.
    expected = ("mlflow-aca image check: the ODBC driver /opt/microsoft/msodbcsql18/lib64/"
                "libmsodbcsql-18.6.so.2.1 cannot load, missing: libssl.so.1.0.2 => not found")
    assert expected in error["message"], error["message"]
