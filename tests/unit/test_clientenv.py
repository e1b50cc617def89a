import subprocess

import pytest

from mlflow_aca import clientenv

URI = "https://mlflow.happy-sky.westeurope.azurecontainerapps.io"


def test_bash_lines_set_the_uri_and_remove_injected_variables():
    script = "\n".join(clientenv.shell_lines(URI, "bash")) + "\nenv"
    injected = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", "-c", script], env=injected, capture_output=True, text=True, check=True)
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert seen["MLFLOW_TRACKING_URI"] == URI
    assert seen["MLFLOW_ENABLE_OTLP_EXPORTER"] == "false"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in seen and "OTEL_EXPORTER_OTLP_PROTOCOL" not in seen


@pytest.mark.parametrize(("shell", "expected"), [
    ("fish", ["set -gx MLFLOW_TRACKING_URI " + URI, "if set -q OTEL_EXPORTER_OTLP_ENDPOINT; set -e OTEL_EXPORTER_OTLP_ENDPOINT; end"]),
    ("powershell", [f"$env:MLFLOW_TRACKING_URI = '{URI}'", "Remove-Item Env:OTEL_EXPORTER_OTLP_ENDPOINT -ErrorAction SilentlyContinue"]),
    ("zsh", [f"export MLFLOW_TRACKING_URI={URI}", "unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]),
])
def test_other_shells(shell, expected):
    lines = clientenv.shell_lines(URI, shell)
    for line in expected:
        assert line in lines


def test_detects_injected_variables():
    assert clientenv.injected_present({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": ""}) == [
        "OTEL_EXPORTER_OTLP_ENDPOINT"]
