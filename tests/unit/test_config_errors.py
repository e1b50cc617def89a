"""Configuration errors a person can act on in one read (issue 13, item 1): the closest key for a
typo, short echoes, the file that was looked for, a BOM accepted, no credentials in any message,
one code style and one exit code per condition."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlflow_aca.config import load_settings
from mlflow_aca.errors import ConfigError, ExitCode, MlflowAcaError, OperationError
from mlflow_aca.redaction import redact
from tests.clirunner import run_cli
from tests.values import SUBSCRIPTION

MINIMAL = 'name = "mlflow"\nlocation = "westeurope"\n'
SUB = {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}
PASCAL = re.compile(r"[A-Z][A-Za-z0-9]+")


def write(tmp_path: Path, text: str, name: str = "mlflow-aca.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def failure(path=None, env=None, **overrides) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ=env or {}, overrides=overrides)
    return raised.value


def whole(error: MlflowAcaError) -> str:
    return f"{error.message}\n{error.hint or ''}"


# --- an unknown key: the closest valid one, not all 48 --------------------------------------
@pytest.mark.parametrize("source", ["file", "env", "flag"])
def test_unknown_key_suggests_the_closest_key(tmp_path, source):
    path = write(tmp_path, MINIMAL + ("memroy = '4Gi'\n" if source == "file" else ""))
    env = {"MLFLOW_ACA_MEMROY": "4Gi"} if source == "env" else {}
    overrides = {"memroy": "4Gi"} if source == "flag" else {}
    error = failure(path, env, **overrides)
    spelled = "MLFLOW_ACA_MEMORY" if source == "env" else "'memory'"
    assert f"did you mean {spelled}?" in error.message
    assert "timeout_minutes" not in whole(error)  # no list of every key


def test_unknown_key_without_a_close_match_points_to_the_reference(tmp_path):
    error = failure(write(tmp_path, MINIMAL + "zzzzqqq = 1\n"))
    assert "did you mean" not in error.message
    assert "Configuration section" in error.hint and "timeout_minutes" not in whole(error)


def test_unknown_flag_suggests_the_closest_key(tmp_path):
    write(tmp_path, MINIMAL)
    result = run_cli("config", "--memroy", "4Gi", cwd=tmp_path, env=SUB)
    assert result.code == 2, result
    assert "did you mean --memory?" in result.stderr


# --- echoed values are shortened -------------------------------------------------------------
def test_a_huge_value_gives_a_short_message(tmp_path):
    path = write(tmp_path, MINIMAL)
    error = failure(path, {"MLFLOW_ACA_MEMORY": "x" * 5_000_000})
    assert len(whole(error)) < 1000
    assert "memory" in error.message and "5000000 characters" in error.message
    in_file = failure(write(tmp_path, MINIMAL + f'memory = "{"x" * 500_000}"\n'))
    assert len(whole(in_file)) < 1000


def test_a_file_over_a_megabyte_is_refused_before_parsing(tmp_path):
    error = failure(write(tmp_path, MINIMAL + "# padding\n" * 200_000))
    assert error.code == "ConfigUnreadable" and "larger than 1024 KiB" in error.message


def test_a_huge_unknown_key_gives_a_short_message(tmp_path):
    error = failure(write(tmp_path, MINIMAL + f'{"k" * 100_000} = 1\n'))
    assert len(whole(error)) < 1000


def test_a_huge_list_gives_a_short_message(tmp_path):
    error = failure(write(tmp_path, MINIMAL), allowed_ips=["not-an-ip"] * 100_000)
    assert len(whole(error)) < 1000


# --- no config file: which file, and how to make one ------------------------------------------
def test_no_config_file_names_the_file_and_init(tmp_path):
    error = failure()
    assert str(tmp_path / "mlflow-aca.toml") in error.message
    assert "mlflow-aca init" in error.hint
    assert error.code == "ConfigMissing"


def test_no_config_file_but_everything_from_the_environment_still_works(tmp_path):
    env = {"MLFLOW_ACA_NAME": "mlflow", "MLFLOW_ACA_LOCATION": "westeurope"}
    assert load_settings(None, environ=env).name == "mlflow"


# --- a UTF-8 BOM (Windows editors) ------------------------------------------------------------
def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "mlflow-aca.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_settings(path, environ={}).name == "mlflow"


# --- credentials in URLs never appear -------------------------------------------------------
CREDENTIALS = [
    ("arm_endpoint", '"https://user:s3cretpw@management.example.com"'),
    ("arm_endpoint", '"https://user:s3cretpw@management.example.com/ x"'),
    ("base_image", '"https://user:s3cretpw@registry.example.com/python:3.12"'),
    ("base_image", '"user:s3cretpw@registry.example.com/python:3.12"'),
    ("extra_packages", '["pkg @ https://user:s3cretpw@pypi.example.com/pkg-1.0.whl"]'),
    ("extra_packages", '["pkg @ https://s3cretpw@pypi.example.com/pkg-1.0.whl"]'),
    ("odbc_repository_url", '"https://user:s3cretpw@mirror.example.com/debian/12/prod"'),
]


@pytest.mark.parametrize(("key", "value"), CREDENTIALS)
def test_credentials_in_urls_are_refused_and_never_echoed(tmp_path, key, value):
    error = failure(write(tmp_path, MINIMAL + f"{key} = {value}\n"))
    assert key in error.message
    assert "s3cretpw" not in whole(error)


@pytest.mark.parametrize(("key", "value"), CREDENTIALS[:1] + CREDENTIALS[2:3] + CREDENTIALS[4:5])
@pytest.mark.parametrize("as_json", [False, True])
def test_credentials_in_urls_never_reach_the_output(tmp_path, key, value, as_json):
    write(tmp_path, MINIMAL + f"{key} = {value}\n")
    result = run_cli("config", *(["--json"] if as_json else []), cwd=tmp_path, env=SUB)
    assert result.code == 1, result
    assert "s3cretpw" not in result.output


def test_credentials_from_a_flag_never_reach_the_output(tmp_path):
    write(tmp_path, MINIMAL)
    result = run_cli("config", "--arm-endpoint", "https://user:s3cretpw@management.example.com",
                     cwd=tmp_path, env=SUB)
    assert result.code == 1, result
    assert "s3cretpw" not in result.output


def test_redaction_masks_url_passwords_in_any_text():
    text = "GET https://user:s3cretpw@host.example/x failed; wasbs://artifacts@st.blob/x ok"
    assert redact(text) == "GET https://user:***@host.example/x failed; wasbs://artifacts@st.blob/x ok"


# --- one code style: Azure's (PascalCase) ------------------------------------------------------
def test_error_codes_follow_azures_style():
    assert ConfigError("x").code == "ConfigInvalid"
    assert OperationError("x").code == "OperationFailed"
    assert MlflowAcaError("x", code="internal_error").code == "InternalError"
    # Codes Azure or Graph return are theirs, kept as they come.
    assert OperationError("x", code="Authorization_RequestDenied").code == "Authorization_RequestDenied"
    assert OperationError("x", code="InvalidTemplateDeployment").code == "InvalidTemplateDeployment"


@pytest.mark.parametrize("toml", [
    MINIMAL + "memroy = '4Gi'\n",  # unknown key
    'name = "mlflow"\nlocation = = "x"\n',  # malformed
    MINIMAL + "cpu = 3.3\n",  # invalid value
])
def test_config_failures_carry_pascal_case_codes(tmp_path, toml):
    write(tmp_path, toml)
    result = run_cli("config", "--json", cwd=tmp_path, env=SUB)
    assert result.code == 1 and PASCAL.fullmatch(result.json["error"]["code"]), result


# --- the same condition, the same exit code ---------------------------------------------------
def test_an_unreadable_path_is_exit_1_for_init_too(tmp_path):
    long_name = "a" * 300 + ".toml"  # ENAMETOOLONG: Path.exists() raises instead of answering
    for argv in (["config"], ["init", "--name", "mlflow", "--location", "westeurope"]):
        result = run_cli(*argv, "--config", long_name, cwd=tmp_path, env=SUB)
        assert result.code == ExitCode.CONFIG, result
        assert "Cannot read config file" in result.stderr and "bug" not in result.stderr


def test_a_deeply_nested_file_is_a_config_error(tmp_path):
    write(tmp_path, "a = " + "[" * 5000 + "]" * 5000 + "\n")
    error = failure(tmp_path / "mlflow-aca.toml")
    assert error.exit_code == ExitCode.CONFIG and error.code == "ConfigMalformed"


def test_an_endless_file_is_refused_not_read_into_memory(tmp_path):
    result = run_cli("config", "--config", "/dev/zero", cwd=tmp_path, env=SUB, timeout=60)
    assert result.code == ExitCode.CONFIG, result
    assert "larger than" in result.stderr


def test_many_wrong_items_are_counted_not_listed(tmp_path):
    error = failure(write(tmp_path, MINIMAL + f"extra_packages = {[1] * 10_000}\n"))
    assert len(whole(error)) < 1000 and "and 9995 more" in error.message
