"""The rendered Dockerfile, read back with a Dockerfile parser (dockerfile-parse), not by eye."""

import re

import pytest
from dockerfile_parse import DockerfileParser

from mlflow_aca.config import Settings
from mlflow_aca.template import PYODBC_VERSION, render_image


def parsed(tmp_path, **overrides):
    settings = Settings(name="mlflow", location="westeurope", **overrides)
    image = render_image(settings)
    parser = DockerfileParser(path=str(tmp_path / "Dockerfile"))
    parser.content = image.dockerfile
    return image, parser


def instructions(parser, name):
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def test_default_image(tmp_path):
    image, parser = parsed(tmp_path)
    assert parser.baseimage == "python:3.12.12-slim-bookworm"
    runs = instructions(parser, "RUN")
    microsoft = next(r for r in runs if "packages.microsoft.com" in r)
    # Microsoft's key goes into a keyring referenced by signed-by; apt-key is not used.
    assert "gpg --dearmor -o /usr/share/keyrings/microsoft-prod.gpg" in microsoft
    assert "signed-by=/usr/share/keyrings/microsoft-prod.gpg" in microsoft
    assert "debian/12/prod bookworm main" in microsoft
    assert re.search(r"ACCEPT_EULA=Y apt-get install .*msodbcsql18 unixodbc", microsoft)
    assert not any("apt-key" in r for r in runs)
    pip = next(r for r in runs if "pip install" in r)
    assert '"mlflow[azure]==3.17.2"' in pip and f'"pyodbc=={PYODBC_VERSION}"' in pip
    assert instructions(parser, "USER") == ["10001:10001"]
    assert instructions(parser, "EXPOSE") == ["5000"]
    assert instructions(parser, "CMD") == ['["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]']
    assert "/opt/mlflow/bin" in parser.envs["PATH"]


def test_odbc_step_off(tmp_path):
    _image, parser = parsed(tmp_path, install_odbc_driver=False)
    runs = instructions(parser, "RUN")
    assert not any("microsoft" in r or "msodbcsql18" in r for r in runs)
    assert any("apt-get install -y --no-install-recommends unixodbc" in r for r in runs)
    assert any("pip install" in r for r in runs)


def test_variations(tmp_path):
    _image, parser = parsed(tmp_path, base_image="registry.local/python:3.11-bookworm",
                            mlflow_version="3.17.1", extra_packages=["boto3==1.35.0", "psycopg[binary]>=3"])
    assert parser.baseimage == "registry.local/python:3.11-bookworm"
    pip = next(r for r in instructions(parser, "RUN") if "pip install" in r)
    assert '"mlflow[azure]==3.17.1"' in pip
    assert '"boto3==1.35.0"' in pip and '"psycopg[binary]>=3"' in pip


def test_runs_as_non_root_after_installing(tmp_path):
    _image, parser = parsed(tmp_path)
    order = [i["instruction"] for i in parser.structure]
    assert order.index("USER") > max(i for i, name in enumerate(order) if name == "RUN")


@pytest.mark.parametrize("secretish", ["password", "AccountKey", "ARG", "token", "secret"])
def test_nothing_secret_in_the_image(tmp_path, secretish):
    image, _parser = parsed(tmp_path, sql_auth="password")
    body = "\n".join(line for line in image.dockerfile.splitlines() if not line.startswith("#"))
    assert secretish.lower() not in body.lower()


def test_tag_follows_the_content(tmp_path):
    first, _ = parsed(tmp_path)
    again, _ = parsed(tmp_path)
    assert first.tag == again.tag and re.fullmatch(r"3\.17\.2-[0-9a-f]{12}", first.tag)
    # Settings that do not reach the Dockerfile do not change the tag.
    unrelated, _ = parsed(tmp_path, max_replicas=3, sql_auth="password")
    assert unrelated.tag == first.tag
    for change in ({"install_odbc_driver": False}, {"extra_packages": ["boto3==1.35.0"]},
                   {"mlflow_version": "3.17.1"}, {"base_image": "python:3.12.11-slim-bookworm"}):
        assert parsed(tmp_path, **change)[0].tag != first.tag, change
    assert first.reference == f"mlflow-server:{first.tag}"
