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
    assert 'curl -fsSL "https://packages.microsoft.com/keys/microsoft.asc"' in microsoft
    assert "https://packages.microsoft.com/debian/12/prod bookworm main" in microsoft
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


def apt_steps(run):
    """The `&&`-joined commands of a RUN line, in order."""
    return [step.strip() for step in run.split("&&")]


def test_driver_runtime_libraries_survive_the_purge(tmp_path):
    # The driver needs libgssapi-krb5-2 (ldd) and dlopens libcurl.so.4 (Entra sign-in); both
    # are named in the install, so apt marks them manual and the purge of curl keeps them.
    _image, parser = parsed(tmp_path)
    microsoft = next(r for r in instructions(parser, "RUN") if "msodbcsql18" in r)
    steps = apt_steps(microsoft)
    install = next(i for i, step in enumerate(steps) if "msodbcsql18" in step)
    purge = next(i for i, step in enumerate(steps) if step.startswith("apt-get purge"))
    assert install < purge
    assert {"libgssapi-krb5-2", "libcurl4"} <= set(steps[install].split())
    assert "libcurl4" not in steps[purge] and "libgssapi-krb5-2" not in steps[purge]


def test_mirror_urls_replace_only_microsofts(tmp_path):
    repository = "https://artifactory.example:8443/ms/debian/12/prod"
    key = "https://artifactory.example:8443/ms/keys/microsoft.asc"
    (tmp_path / "default").mkdir()
    default, default_parser = parsed(tmp_path / "default")  # the parser reads its own file lazily
    image, parser = parsed(tmp_path, odbc_repository_url=repository, odbc_key_url=key)
    microsoft = next(r for r in instructions(parser, "RUN") if "msodbcsql18" in r)
    assert f'curl -fsSL "{key}"' in microsoft
    assert f"signed-by=/usr/share/keyrings/microsoft-prod.gpg] {repository} bookworm main" in microsoft
    assert "packages.microsoft.com" not in image.dockerfile
    # Microsoft's step stays Microsoft's: only the two URLs differ.
    original = next(r for r in instructions(default_parser, "RUN") if "msodbcsql18" in r)
    assert microsoft.replace(repository, "R").replace(key, "K") == original.replace(
        "https://packages.microsoft.com/debian/12/prod", "R").replace(
        "https://packages.microsoft.com/keys/microsoft.asc", "K")
    assert image.tag != default.tag
    # Without the driver step the URLs are not used, and the image does not change.
    off = parsed(tmp_path, install_odbc_driver=False)[0]
    assert parsed(tmp_path, install_odbc_driver=False, odbc_repository_url=repository)[0].tag == off.tag


def self_check(parser):
    return next(r for r in instructions(parser, "RUN") if "mlflow-aca image check" in r)


def test_self_check_runs_after_pyodbc_and_demands_the_driver(tmp_path):
    _image, parser = parsed(tmp_path)
    runs = instructions(parser, "RUN")
    check = self_check(parser)
    assert runs.index(check) > next(i for i, r in enumerate(runs) if "pip install" in r)
    assert 'odbcinst -q -d -n "ODBC Driver 18 for SQL Server"' in check  # the path, not a version
    assert "libmsodbcsql" not in check
    assert "ldd" in check and "not found" in check
    assert "ctypes.CDLL('libcurl.so.4')" in check
    assert "pyodbc.drivers()" in check


def test_self_check_without_the_driver_step_only_imports_pyodbc(tmp_path):
    _image, parser = parsed(tmp_path, install_odbc_driver=False)
    check = self_check(parser)
    assert 'python -c "import pyodbc"' in check
    assert not any(word in check for word in ("odbcinst", "ldd", "libcurl", "ODBC Driver 18"))


def test_template_trusts_no_test_ca(tmp_path):
    image, _parser = parsed(tmp_path)
    assert "ca-certificates/" not in image.dockerfile and "PIP_CERT" not in image.dockerfile
    assert "mlflow-aca-test" not in image.dockerfile


@pytest.mark.parametrize("odbc", [True, False])
def test_the_sql_plugin_is_copied_from_the_context_installed_and_checked(tmp_path, odbc):
    from mlflow_aca.image_files import PLUGIN_WHEEL

    image, parser = parsed(tmp_path, install_odbc_driver=odbc)
    assert instructions(parser, "COPY") == [f"{PLUGIN_WHEEL} /tmp/mlflow-aca/"]
    assert set(image.files) == {PLUGIN_WHEEL}  # what the build context must hold for that COPY
    runs = instructions(parser, "RUN")
    install = next(i for i, r in enumerate(runs) if f"pip install --no-deps /tmp/mlflow-aca/{PLUGIN_WHEEL}" in r)
    # After MLflow's own install (a plugin change must not reinstall MLflow), before the check.
    assert next(i for i, r in enumerate(runs) if "mlflow[azure]" in r) < install < runs.index(self_check(parser))
    assert "sqlalchemy.create_engine('sqlite://?plugin=mlflow_aca')" in self_check(parser)


def test_mlflow_is_installed_before_the_odbc_step_so_its_layer_survives_repository_changes(tmp_path):
    # The pip layer is the slow one (about a minute and a gigabyte): a mirror URL, the driver or
    # the self-check changing must not rebuild it.
    _image, parser = parsed(tmp_path)
    (tmp_path / "m").mkdir()
    _other, mirrored = parsed(tmp_path / "m", odbc_repository_url="https://mirror.example.com/debian/12/prod")
    runs, mirrored_runs = instructions(parser, "RUN"), instructions(mirrored, "RUN")
    pip = next(i for i, r in enumerate(runs) if "mlflow[azure]" in r)
    assert pip < next(i for i, r in enumerate(runs) if "msodbcsql18" in r)
    assert runs[:pip + 1] == mirrored_runs[:pip + 1]
