"""The rendered Dockerfile, read back with a Dockerfile parser (dockerfile-parse), not by eye."""

import re
from pathlib import Path

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
    assert "--require-hashes" in pip and "-r /usr/local/share/mlflow-aca/mlflow-3.17.2-py3.12.txt" in pip
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
    # The last one: the lock and key steps print their own "mlflow-aca image check:" lines.
    return next(r for r in instructions(parser, "RUN") if "mlflow-aca image check" in r and "import pyodbc" in r)


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
    lock = "mlflow-3.17.2-py3.12.txt"
    assert instructions(parser, "COPY") == [f"{lock} /usr/local/share/mlflow-aca/", f"{PLUGIN_WHEEL} /tmp/mlflow-aca/"]
    assert set(image.files) == {lock, PLUGIN_WHEEL}  # what the build context must hold for those COPYs
    runs = instructions(parser, "RUN")
    install = next(i for i, r in enumerate(runs) if f"pip install --no-deps /tmp/mlflow-aca/{PLUGIN_WHEEL}" in r)
    # After MLflow's own install (a plugin change must not reinstall MLflow), before the check.
    assert next(i for i, r in enumerate(runs) if lock in r) < install < runs.index(self_check(parser))
    assert "sqlalchemy.create_engine('sqlite://?plugin=mlflow_aca')" in self_check(parser)


def test_mlflow_is_installed_before_the_odbc_step_so_its_layer_survives_repository_changes(tmp_path):
    # The pip layer is the slow one (about a minute and a gigabyte): a mirror URL, the driver or
    # the self-check changing must not rebuild it.
    _image, parser = parsed(tmp_path)
    (tmp_path / "m").mkdir()
    _other, mirrored = parsed(tmp_path / "m", odbc_repository_url="https://mirror.example.com/debian/12/prod")
    runs, mirrored_runs = instructions(parser, "RUN"), instructions(mirrored, "RUN")
    pip = next(i for i, r in enumerate(runs) if "--require-hashes" in r)
    assert pip < next(i for i, r in enumerate(runs) if "msodbcsql18" in r)
    assert runs[:pip + 1] == mirrored_runs[:pip + 1]


# -- supply chain: the repository key, the base image, the Python packages -----------------------------
MICROSOFT = "BC528686B50D79E339D3721CEB3E94ADBE1229CF"
LOCKS = Path(__file__).resolve().parents[2] / "templates" / "constraints"


def odbc_steps(parser):
    return apt_steps(next(r for r in instructions(parser, "RUN") if "msodbcsql18" in r))


def test_the_repository_key_is_checked_against_its_fingerprint_before_it_becomes_a_keyring(tmp_path):
    _image, parser = parsed(tmp_path)
    steps = odbc_steps(parser)
    download = next(i for i, s in enumerate(steps) if s.startswith("curl -fsSL"))
    check = next(i for i, s in enumerate(steps) if "--show-keys --with-colons" in s)
    compare = next(i for i, s in enumerate(steps) if f'[ "$got" = "{MICROSOFT}" ]' in s)
    keyring = next(i for i, s in enumerate(steps) if "gpg --dearmor -o /usr/share/keyrings/microsoft-prod.gpg" in s)
    assert download < check < compare < keyring
    # The one line the CLI shows: what was expected, what was found, and the setting to change.
    assert "mlflow-aca image check: the key at https://packages.microsoft.com/keys/microsoft.asc has " \
           f"fingerprint ${{got:-none (no OpenPGP key in it)}}, expected {MICROSOFT} (odbc_key_fingerprint)" \
           in steps[compare]


def test_a_mirrors_own_key_fingerprint_is_a_setting_written_as_gpg_prints_it(tmp_path):
    spaced = "0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567"
    settings = Settings(name="mlflow", location="westeurope", odbc_key_fingerprint=spaced)
    assert settings.odbc_key_fingerprint == "0123456789ABCDEF0123456789ABCDEF01234567"
    assert Settings(name="mlflow", location="westeurope").odbc_key_fingerprint == MICROSOFT
    _image, parser = parsed(tmp_path, odbc_key_fingerprint=spaced)
    assert any('[ "$got" = "0123456789ABCDEF0123456789ABCDEF01234567" ]' in s for s in odbc_steps(parser))


@pytest.mark.parametrize("bad", ["EB3E94ADBE1229CF", MICROSOFT + "00", MICROSOFT[:-1] + "G", "$(id)" + MICROSOFT[5:]])
def test_a_fingerprint_must_be_40_hex_digits(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="40 hexadecimal digits"):
        Settings(name="mlflow", location="westeurope", odbc_key_fingerprint=bad)


def test_a_base_image_pinned_by_digest_is_built_from_verbatim(tmp_path):
    pinned = "python:3.12.12-slim-bookworm@sha256:" + "0123456789abcdef" * 4
    image, parser = parsed(tmp_path, base_image=pinned)
    assert parser.baseimage == pinned
    assert f"FROM {pinned}\n" in image.dockerfile
    assert "mlflow-3.17.2-py3.12.txt" in image.files  # the tag still names the Python


def test_the_default_mlflow_version_installs_from_its_hashed_lock(tmp_path):
    image, parser = parsed(tmp_path)
    lock = "mlflow-3.17.2-py3.12.txt"
    assert image.files[lock] == (LOCKS / lock).read_bytes()
    pip = " ".join(next(r for r in instructions(parser, "RUN") if "--require-hashes" in r).split())
    assert f"pip install --require-hashes --only-binary :all: --no-deps -r /usr/local/share/mlflow-aca/{lock}" in pip
    assert "mlflow[azure]" not in pip  # nothing outside the lock
    # The Python the lock is for is checked first, with one line for the CLI to show.
    assert pip.index('[ "$python" = "3.12" ]') < pip.index("python3 -m venv")
    assert "mlflow-aca image check: the base image has Python $python, but the dependency lock " \
           f"{lock} is for Python 3.12" in pip


@pytest.mark.parametrize(("base", "lock"), [("python:3.11-slim-bookworm", "mlflow-3.17.2-py3.11.txt"),
                                            ("registry.local/python:3.13.1-slim", "mlflow-3.17.2-py3.13.txt"),
                                            ("python:3.12", "mlflow-3.17.2-py3.12.txt")])
def test_the_lock_follows_the_python_the_base_image_tag_names(tmp_path, base, lock):
    image, _parser = parsed(tmp_path, base_image=base)
    assert lock in image.files and f"-r /usr/local/share/mlflow-aca/{lock}" in image.dockerfile


@pytest.mark.parametrize("change", [{"mlflow_version": "3.17.1"}, {"base_image": "python:3.10-slim-bookworm"},
                                    {"base_image": "python@sha256:" + "ab" * 32},
                                    {"base_image": "registry.local/base:bookworm"}])
def test_without_a_lock_the_build_resolves_as_before(tmp_path, change):
    image, parser = parsed(tmp_path, **change)
    pip = next(r for r in instructions(parser, "RUN") if "pip install" in r)
    version = change.get("mlflow_version", "3.17.2")
    assert f'"mlflow[azure]=={version}"' in pip and f'"pyodbc=={PYODBC_VERSION}"' in pip
    assert "--require-hashes" not in image.dockerfile
    assert set(image.files) == {"mlflow_aca_sql-1.0.0-py3-none-any.whl"}


def test_extra_packages_come_after_the_locked_install_held_to_its_versions(tmp_path):
    _image, parser = parsed(tmp_path, extra_packages=["boto3==1.35.0", "psycopg[binary]>=3"])
    runs = instructions(parser, "RUN")
    locked = next(i for i, r in enumerate(runs) if "--require-hashes" in r)
    extra = next(i for i, r in enumerate(runs) if '"boto3==1.35.0"' in r)
    assert extra == locked + 1  # a step of its own: the locked layer does not depend on them
    steps = apt_steps(runs[extra])
    assert steps[1].startswith("/opt/mlflow/bin/pip install -c /tmp/mlflow-aca-pins.txt")
    assert '"psycopg[binary]>=3"' in steps[1] and "--require-hashes" not in runs[extra]
    (tmp_path / "plain").mkdir()
    _plain, plain = parsed(tmp_path / "plain")
    assert instructions(plain, "RUN")[locked] == runs[locked]


def test_the_lock_pins_every_package_with_hashes_including_mlflow_and_pyodbc():
    for lock in sorted(LOCKS.glob("mlflow-3.17.2-py3.*.txt")):
        text = lock.read_text()
        requirements = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
        pins = {}
        for requirement in requirements:
            name, version = re.match(r"([A-Za-z0-9._-]+)==(\S+)", requirement).groups()
            assert re.search(r"--hash=sha256:[0-9a-f]{64}", requirement), (lock.name, name)
            pins[name] = version
        assert pins["mlflow"] == "3.17.2" and pins["pyodbc"] == PYODBC_VERSION, lock.name
        assert {"azure-storage-blob", "azure-identity", "sqlalchemy"} <= set(pins), lock.name


def test_the_default_settings_have_a_lock_for_the_default_base_image():
    from mlflow_aca.supply_chain import lock_for

    settings = Settings(name="mlflow", location="westeurope")
    assert lock_for(settings).name == f"mlflow-{settings.mlflow_version}-py3.12.txt"


def test_notices_say_what_is_not_pinned():
    from mlflow_aca.supply_chain import notices

    def said(**overrides):
        return notices(Settings(name="mlflow", location="westeurope", **overrides))

    digest = "@sha256:" + "0123456789abcdef" * 4
    assert said() == [
        "base image python:3.12.12-slim-bookworm is not pinned by digest: a rebuild may get different contents; "
        "pin it with base_image = 'python:3.12.12-slim-bookworm@sha256:…' (`docker buildx imagetools inspect "
        "python:3.12.12-slim-bookworm` prints it)"]
    assert said(base_image="python:3.12.12-slim-bookworm" + digest) == []
    [unlocked] = said(base_image="python:3.12.12-slim-bookworm" + digest, mlflow_version="3.17.1")
    assert unlocked.startswith("the image's Python packages are not hash-pinned: mlflow-aca ships no lock for "
                               "MLflow 3.17.1")
    [untagged] = said(base_image="python" + digest)
    assert "does not say its Python version" in untagged and "Python 3.11, 3.12, 3.13" in untagged
    [extras] = said(base_image="python:3.12.12-slim-bookworm" + digest, extra_packages=["boto3==1.35.0"])
    assert extras.startswith("extra_packages (boto3==1.35.0) are installed without hash checking")
