"""The OpenTelemetry trap and `mlflow-aca env`.

Container Apps injects OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_EXPORTER_OTLP_PROTOCOL=grpc) into
every container of an environment with an OTLP destination; a client running there sends
MLflow traces to that collector instead of the tracking server. A real client process, against
the deployed spec replayed with Docker (see test_replay.py), loses its trace with the injected
variables and delivers it after eval-ing the lines `mlflow-aca env` prints.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid

import pytest

from tests import services
from tests.clirunner import clean_environ
from tests.integration import replay
from tests.integration.conftest import Deployment

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# The client: a trace, and a run as a control that the tracking server itself is reachable.
CLIENT = textwrap.dedent("""
    import sys

    import mlflow

    mlflow.set_experiment(sys.argv[1])

    @mlflow.trace
    def double(x):
        return 2 * x

    double(21)
    with mlflow.start_run():
        mlflow.log_param("reached", "yes")
    mlflow.flush_trace_async_logging()
""")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(standin_session, tmp_path_factory, replay_image, postgres_driver, replay_engine):
    """Deploy (Entra SQL auth: no secrets) and keep the replayed app serving on its FQDN."""
    azurite, postgres = services.require_azurite(), services.require_postgres()
    deployment = Deployment.with_image(standin_session, tmp_path_factory.mktemp("otel"), replay_image,
                                       {"storage_container_name": f"otel-{uuid.uuid4().hex[:12]}"})
    app = deployment.one("Microsoft.App/containerApps")
    blobs = replay.ensure_blob_container(azurite, deployment.settings["storage_container_name"], exists=True)
    with replay.fresh_database(postgres) as database:
        run = replay.substitute_for_local(
            replay.app_run(app, replay.list_secrets(deployment, app)), azurite=azurite, postgres_driver=postgres_driver,
            database_url=postgres.url(database, driver="psycopg", for_container=True))
        with replay.running_app(replay_engine, run) as running:
            standin_session.set_app_endpoint(app["id"], backend=running.backend)
            yield deployment, app["properties"]["configuration"]["ingress"]["fqdn"]
    blobs.delete_container()


def client_environ(deployment: Deployment, **extra: str) -> dict[str, str]:
    """A user's shell: the stand-in's settings (ARM endpoint, CA, proxy), nothing of MLflow's."""
    env = {k: v for k, v in clean_environ(deployment.env()).items()
           if not k.startswith(("MLFLOW_", "OTEL_")) or k.startswith("MLFLOW_ACA_")}
    env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", **extra)
    return env


def signed_in(deployment: Deployment, **extra: str) -> dict[str, str]:
    """The same shell after `eval "$(mlflow-aca env)"` for sign-in: the client's token plugin."""
    return client_environ(deployment, **replay.signed_in_environ(deployment), **extra)


def injected() -> dict[str, str]:
    """What Container Apps sets, pointing at a collector that is not there."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}


def traces_and_runs(fqdn: str, deployment: Deployment, experiment: str) -> tuple[int, int]:
    """What reached the server for EXPERIMENT: (traces, runs), asked through the ingress."""
    script = textwrap.dedent("""
        import json, sys
        from mlflow import MlflowClient
        client = MlflowClient()
        experiment = client.get_experiment_by_name(sys.argv[1])
        traces = client.search_traces(locations=[experiment.experiment_id])
        runs = client.search_runs([experiment.experiment_id])
        print(json.dumps([len(traces), len(runs)]))
    """)
    done = subprocess.run([sys.executable, "-c", script, experiment], capture_output=True, text=True, timeout=120,
                          env=signed_in(deployment, MLFLOW_TRACKING_URI=f"https://{fqdn}"))
    assert done.returncode == 0, done.stderr
    return tuple(json.loads(done.stdout))


def run_client(deployment: Deployment, command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    script = deployment.directory / "client.py"
    script.write_text(CLIENT)
    return subprocess.run(["bash", "-c", command], cwd=deployment.directory, env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.mark.parametrize("flag", [{}, {"MLFLOW_ENABLE_OTLP_EXPORTER": "false"}], ids=["injected", "flag-alone"])
def test_injected_otel_variables_lose_the_trace(server, flag):
    """The client exits 0 and its run arrives; the trace does not, and without a word.
    MLFLOW_ENABLE_OTLP_EXPORTER=false alone does not bring it back either (mlflow issue #23775;
    MLflow then at least warns that a span could not end): the variables must go."""
    deployment, fqdn = server
    experiment = f"otel-lost-{uuid.uuid4().hex[:8]}"
    env = signed_in(deployment, MLFLOW_TRACKING_URI=f"https://{fqdn}", **injected(), **flag)
    done = run_client(deployment, f'exec "{sys.executable}" client.py {experiment}', env)
    assert done.returncode == 0, done.stderr
    if not flag:
        assert not any(word in done.stderr for word in ("WARNING", "ERROR", "Traceback")), done.stderr
    assert traces_and_runs(fqdn, deployment, experiment) == (0, 1), done.stderr


def test_the_fix_mlflow_aca_env_prints_brings_the_trace_to_the_server(server):
    deployment, fqdn = server
    experiment = f"otel-fixed-{uuid.uuid4().hex[:8]}"
    env = client_environ(deployment, **injected())  # no MLFLOW_TRACKING_URI: env prints it
    done = run_client(deployment, f'eval "$("{sys.executable}" -m mlflow_aca env)" && '
                                  f'exec "{sys.executable}" client.py {experiment}', env)
    assert done.returncode == 0, done.stderr
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in done.stderr and "Warning" in done.stderr  # env's own warning
    assert traces_and_runs(fqdn, deployment, experiment) == (1, 1), done.stderr


# -- `env` for each shell -------------------------------------------------------------------------------------
# How each shell runs the printed lines and then shows its environment.
# Chained with "and"/"&&", as users do (`eval "$(mlflow-aca env)" && python train.py`): the
# lines must leave a success status.
SHELLS = {
    "bash": ["bash", "-c", 'eval "$(cat lines)" && env'],
    "zsh": ["zsh", "-c", 'eval "$(cat lines)" && env'],
    "fish": ["fish", "-c", "source lines; and env"],
    "powershell": ["pwsh", "-NoProfile", "-Command",
                   "Get-Content lines | Out-String | Invoke-Expression; if ($?) { "
                   "Get-ChildItem Env: | ForEach-Object { \"$($_.Name)=$($_.Value)\" } }"],
}
# The syntax each shell's lines must have (checked whether or not the shell is installed here).
EXPECTED = {
    "bash": ["export MLFLOW_TRACKING_URI={uri}", "export MLFLOW_TRACKING_AUTH=mlflow-aca",
             "export MLFLOW_ACA_AUTH_SCOPE={scope}", "export MLFLOW_ENABLE_OTLP_EXPORTER=false", "unset {names}"],
    "zsh": ["export MLFLOW_TRACKING_URI={uri}", "export MLFLOW_TRACKING_AUTH=mlflow-aca",
            "export MLFLOW_ACA_AUTH_SCOPE={scope}", "export MLFLOW_ENABLE_OTLP_EXPORTER=false", "unset {names}"],
    "fish": ["set -gx MLFLOW_TRACKING_URI {uri}", "set -gx MLFLOW_TRACKING_AUTH mlflow-aca",
             "set -gx MLFLOW_ACA_AUTH_SCOPE {scope}", "set -gx MLFLOW_ENABLE_OTLP_EXPORTER false",
             *[f"if set -q {name}; set -e {name}; end"
               for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                            "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")]],
    "powershell": ["$env:MLFLOW_TRACKING_URI = '{uri}'", "$env:MLFLOW_TRACKING_AUTH = 'mlflow-aca'",
                   "$env:MLFLOW_ACA_AUTH_SCOPE = '{scope}'", "$env:MLFLOW_ENABLE_OTLP_EXPORTER = 'false'",
                   *[f"Remove-Item Env:{name} -ErrorAction SilentlyContinue"
                     for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                  "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")]],
}
ALL_INJECTED = "OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL " \
               "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"


@pytest.mark.parametrize("shell", list(SHELLS))
def test_env_prints_the_uri_and_the_fix_for_each_shell_and_warns(server, shell, tmp_path):
    deployment, fqdn = server
    uri = f"https://{fqdn}"
    variables = {**injected(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317/v1/traces"}
    result = deployment.cli("env", "--shell", shell, env=variables)
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    scope = deployment.ok("env")["variables"]["MLFLOW_ACA_AUTH_SCOPE"]
    assert lines == [line.format(uri=uri, names=ALL_INJECTED, scope=scope) for line in EXPECTED[shell]]
    warning = " ".join(result.stderr.split())
    assert "Warning" in warning and all(name in warning for name in variables), result.stderr

    program = shutil.which(SHELLS[shell][0])
    if program is None:
        return  # the syntax above is all that can be checked without the shell
    (tmp_path / "lines").write_text(result.stdout)
    after = subprocess.run(SHELLS[shell], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **variables})
    assert after.returncode == 0, after.stderr
    seen = dict(line.split("=", 1) for line in after.stdout.splitlines() if "=" in line)
    assert seen["MLFLOW_TRACKING_URI"] == uri and seen["MLFLOW_ENABLE_OTLP_EXPORTER"] == "false"
    assert seen["MLFLOW_TRACKING_AUTH"] == "mlflow-aca" and seen["MLFLOW_ACA_AUTH_SCOPE"] == scope
    assert not set(variables) & set(seen)


def test_env_is_quiet_without_injected_variables_and_reports_them_in_json(server):
    deployment, fqdn = server
    quiet = deployment.cli("env")
    assert quiet.code == 0 and quiet.stderr == "", quiet
    data = deployment.ok("env", "--shell", "fish", env=injected())
    assert data["tracking_uri"] == f"https://{fqdn}" and data["shell"] == "fish"
    assert data["injected_variables_present"] == ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"]
    assert f"set -gx MLFLOW_TRACKING_URI https://{fqdn}" in data["lines"]
