"""The command surface and its contract (SPEC §2, §7), through the real entry point."""

import subprocess
import sys
import tomllib

import pytest

from mlflow_aca.config import Settings
from tests.clirunner import clean_environ, run_cli, run_cli_on_tty
from tests.values import SUBSCRIPTION

COMMANDS = ["init", "build", "push", "provision", "deploy", "up", "plan", "status", "teardown",
            "env", "config"]
VALID = 'name = "mlflow"\nlocation = "westeurope"\n'
SUB = {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}


def assert_clean_failure(result, code, *fragments):
    assert result.code == code, result
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command, tmp_path):
    result = run_cli(*([command] if command else []), "--help", cwd=tmp_path)
    assert result.code == 0, result
    assert "Usage: mlflow-aca" in result.stdout
    if command:
        for option in ("--config", "--json", "--yes", "--verbose"):
            assert option in result.stdout


def test_version(tmp_path):
    from mlflow_aca import __version__

    result = run_cli("--version", cwd=tmp_path)
    assert result.code == 0 and result.stdout.strip() == f"mlflow-aca {__version__}"


def test_top_level_help_lists_every_command(tmp_path):
    listing = run_cli("--help", cwd=tmp_path).stdout
    for command in COMMANDS:
        assert f"  {command} " in listing


@pytest.mark.parametrize("argv", [["--help"], ["status", "--help"]])
def test_help_imports_no_azure_or_docker(argv, tmp_path):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['mlflow-aca', *{argv!r}]\n"
        "try:\n    runpy.run_module('mlflow_aca', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'docker', 'pydantic', 'requests'))\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=tmp_path, env=clean_environ())
    assert "Usage:" in result.stdout
    assert "HEAVY=\n" in result.stderr, result.stderr


def test_build_dry_run_prints_the_dockerfile(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID)
    result = run_cli("build", "--dry-run", cwd=tmp_path)
    assert result.code == 0, result
    assert result.stdout.startswith("# MLflow tracking server")
    assert "FROM python:3.12.12-slim-bookworm" in result.stdout
    assert "image: mlflow-server:3.17.2-" in result.stderr
    as_json = run_cli("build", "--dry-run", "--json", "--no-install-odbc-driver", cwd=tmp_path)
    assert as_json.code == 0 and as_json.json["ok"] is True
    assert "msodbcsql18" not in as_json.json["data"]["dockerfile"]
    assert as_json.json["data"]["tag"] != run_cli("build", "--dry-run", "--json", cwd=tmp_path).json["data"]["tag"]


# --- bad input: exit 1, one paragraph, no traceback ---------------------------------------------
def test_malformed_toml(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text('name = "mlflow"\nlocation = = "x"\n')
    assert_clean_failure(run_cli("config", cwd=tmp_path, env=SUB), 1, "line 2", "column")


def test_unknown_key(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID + "replicas = 3\n")
    assert_clean_failure(run_cli("config", cwd=tmp_path, env=SUB), 1, "unknown key 'replicas'")


def test_wrong_type(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID + "min_replicas = 'one'\n")
    assert_clean_failure(run_cli("config", cwd=tmp_path, env=SUB), 1, "min_replicas", "integer")


def test_invalid_name(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID + "sql_server_name = '-sql'\n")
    assert_clean_failure(run_cli("config", cwd=tmp_path, env=SUB), 1, "sql_server_name", "'-sql'",
                         "Example: 'mlflow-sql-1a2b3c'")


def test_missing_subscription(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID)
    assert_clean_failure(run_cli("config", cwd=tmp_path), 1, "No Azure subscription",
                         "AZURE_SUBSCRIPTION_ID")


def test_unreadable_config_file(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_bytes(b"name = \xff\n")
    assert_clean_failure(run_cli("config", cwd=tmp_path, env=SUB), 1, "Cannot read config file")


def test_named_config_file_missing(tmp_path):
    assert_clean_failure(run_cli("config", "--config", "nope.toml", cwd=tmp_path), 1,
                         "nope.toml does not exist", "mlflow-aca init")


def test_failure_envelope_in_json(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID + "replicas = 3\n")
    result = run_cli("config", "--json", cwd=tmp_path, env=SUB)
    assert result.code == 1 and result.stderr == ""
    document = result.json
    assert document["ok"] is False and document["command"] == "config"
    assert set(document["error"]) == {"code", "message", "hint"}
    assert document["error"]["code"] == "UnknownKey"


def test_usage_errors_exit_2(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID)
    assert_clean_failure(run_cli("deploy", "--no-such-flag", cwd=tmp_path), 2, "--no-such-flag")
    assert_clean_failure(run_cli("frobnicate", cwd=tmp_path), 2, "No such command")
    assert_clean_failure(run_cli("env", "--shell", "tcsh", cwd=tmp_path), 2, "tcsh")
    result = run_cli("frobnicate", "--json", cwd=tmp_path)
    assert result.code == 2 and result.json["ok"] is False and result.json["error"]["code"] == "Usage"


def test_config_flag_needs_a_value(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID)
    assert_clean_failure(run_cli("config", "--memory", cwd=tmp_path, env=SUB), 2, "--memory needs a value")


# --- config ------------------------------------------------------------------------------------
def test_config_shows_names_uris_and_cloud(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID + "cloud = 'AzureChinaCloud'\nsql_auth = 'password'\n")
    result = run_cli("config", "--json", cwd=tmp_path, env=SUB)
    assert result.code == 0, result
    data = result.json["data"]
    expected = Settings(name="mlflow", location="westeurope", subscription_id=SUBSCRIPTION).names
    assert data["names"]["sql_server"] == expected.sql_server
    assert data["cloud"]["name"] == "AzureChinaCloud"
    assert f"@{expected.sql_server}.database.chinacloudapi.cn:1433/" in data["uris"]["backend_store"]
    assert ":***@" in data["uris"]["backend_store"]
    assert data["uris"]["artifacts_destination"].endswith(".blob.core.chinacloudapi.cn/")
    human = run_cli("config", cwd=tmp_path, env=SUB)
    assert expected.storage_account in human.stdout and "wasbs://" in human.stdout


def test_flags_override_environment_and_file(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text(VALID + "app_name = 'from-file'\n")
    env = {**SUB, "MLFLOW_ACA_APP_NAME": "from-env"}
    assert run_cli("config", "--json", cwd=tmp_path, env=env).json["data"]["names"]["app"] == "from-env"
    result = run_cli("config", "--json", "--app-name", "from-flag", cwd=tmp_path, env=env)
    assert result.json["data"]["names"]["app"] == "from-flag"


# --- init --------------------------------------------------------------------------------------
def test_init_from_flags_alone(tmp_path):
    result = run_cli("init", "--name", "team-ml", "--location", "northeurope", "--subscription",
                     SUBSCRIPTION, "--memory", "4Gi", "--cpu", "2.0", "--allowed-ips", "203.0.113.0/24",
                     cwd=tmp_path)
    assert result.code == 0, result
    text = (tmp_path / "mlflow-aca.toml").read_text()
    values = tomllib.loads(text)
    assert values == {"name": "team-ml", "location": "northeurope", "subscription_id": SUBSCRIPTION,
                      "memory": "4Gi", "cpu": 2.0, "allowed_ips": ["203.0.113.0/24"]}
    # Every key is documented in the file, from the model's own descriptions.
    for key, field in Settings.model_fields.items():
        assert f"# {field.description}" in text, key
        assert f"{key} =" in text, key
    loaded = run_cli("config", "--json", cwd=tmp_path).json["data"]["settings"]
    assert loaded["memory"] == "4Gi" and loaded["name"] == "team-ml"


def test_init_refuses_to_overwrite(tmp_path):
    (tmp_path / "mlflow-aca.toml").write_text("# mine\n")
    result = run_cli("init", "--name", "ml", "--location", "westeurope", cwd=tmp_path)
    assert_clean_failure(result, 1, "already exists", "--force")
    assert (tmp_path / "mlflow-aca.toml").read_text() == "# mine\n"
    forced = run_cli("init", "--name", "ml", "--location", "westeurope", "--force", cwd=tmp_path)
    assert forced.code == 0 and 'name = "ml"' in (tmp_path / "mlflow-aca.toml").read_text()


def test_init_without_tty_needs_flags(tmp_path):
    result = run_cli("init", "--location", "westeurope", cwd=tmp_path)
    assert_clean_failure(result, 1, "Missing 'name'", "--name")
    assert not (tmp_path / "mlflow-aca.toml").exists()


def test_init_validates_before_writing(tmp_path):
    result = run_cli("init", "--name", "ML_Team", "--location", "westeurope", cwd=tmp_path)
    assert_clean_failure(result, 1, "name = 'ML_Team'")
    assert not (tmp_path / "mlflow-aca.toml").exists()


def test_init_prompts_on_a_tty(tmp_path):
    result = run_cli_on_tty("init", "--config", "team.toml", cwd=tmp_path, answers=[
        ("Deployment name", "prompted"), ("Azure region", ""), ("Subscription id", SUBSCRIPTION)])
    assert result.code == 0, result.transcript
    assert len(result.answered) == 3
    values = tomllib.loads((tmp_path / "team.toml").read_text())
    assert values == {"name": "prompted", "location": "westeurope", "subscription_id": SUBSCRIPTION}
