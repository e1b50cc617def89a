"""`init` at a terminal asks again on an invalid answer; its hint speaks of what it did."""

from __future__ import annotations

import tomllib

from tests.clirunner import run_cli, run_cli_on_tty


def test_invalid_answer_is_asked_again(tmp_path):
    # The runner answers a prompt once its text has appeared; the second "Deployment name"
    # answer waits in the terminal's buffer for the prompt asked again.
    result = run_cli_on_tty("init", cwd=tmp_path, answers=[
        ("Deployment name", "Bad_Name!"), ("Deployment name", "team-a"), ("Azure region", "westeurope"),
        ("Subscription id", "")])
    assert result.code == 0, result
    assert "Try again." in result.transcript
    assert "mlflow-aca.toml, the MLFLOW_ACA_*" not in result.transcript  # no file to fix
    written = tomllib.loads((tmp_path / "mlflow-aca.toml").read_text())
    assert written["name"] == "team-a" and written["location"] == "westeurope"


def test_invalid_flag_hint_speaks_of_init_not_of_a_file(tmp_path):
    result = run_cli("init", "--name", "Bad_Name!", "--location", "westeurope", cwd=tmp_path)
    assert result.code == 1, result
    assert "Nothing was written" in result.stderr and "Fix the value in mlflow-aca.toml" not in result.stderr
    assert not (tmp_path / "mlflow-aca.toml").exists()
