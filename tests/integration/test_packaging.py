"""The wheel carries the template and the installed tool renders it from the installed package."""

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(work / "dist"), str(REPO)], check=True, capture_output=True)
    (wheel,) = (work / "dist").glob("mlflow_aca-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # Install the wheel itself with pip; borrow its dependencies from the test environment
    # through a .pth line (which, unlike a site directory, does not run the editable install's
    # own .pth, so the checkout cannot leak in).
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)
    Path(purelib, "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env_dir, work


def test_wheel_contains_the_template(installed):
    env_dir, work = installed
    import zipfile

    (wheel,) = (work / "dist").glob("mlflow_aca-*.whl")
    assert "mlflow_aca/templates/Dockerfile.j2" in zipfile.ZipFile(wheel).namelist()


def test_installed_tool_renders_from_its_own_package(installed, tmp_path):
    env_dir, _work = installed
    python = str(env_dir / "bin" / "python")
    probe = ("import mlflow_aca, mlflow_aca.template as t; from importlib import resources;"
             "print(mlflow_aca.__file__);"
             "print(resources.files('mlflow_aca').joinpath('templates','Dockerfile.j2').is_file())")
    where, packaged = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True,
                                     text=True, check=True).stdout.split()
    assert where.startswith(str(env_dir)) and packaged == "True"
    result = subprocess.run([str(env_dir / "bin" / "mlflow-aca"), "build", "--dry-run", "--name",
                             "mlflow", "--location", "westeurope"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (REPO / "templates" / "Dockerfile.j2").read_text().splitlines()[0] in result.stdout
    assert "FROM python:3.12.12-slim-bookworm" in result.stdout
