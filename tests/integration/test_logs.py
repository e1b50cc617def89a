"""`mlflow-aca logs` against the stand-in's log streams (getAuthToken, a replica container's
logStreamEndpoint, the app's eventStreamEndpoint, a job execution's replicas): tail, follow and
Ctrl-C, --system, --job, the errors a person acts on, and the token never shown."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.clirunner import clean_environ


def test_tail_prints_the_console_lines(deployed):
    app = deployed.one("Microsoft.App/containerApps")
    deployed.standin.append_app_logs(app["id"], [f"line {n}" for n in range(50)])
    result = deployed.cli("logs", "--tail", "5")
    assert result.code == 0, result
    shown = result.stdout.splitlines()
    assert shown[-5:] == [f"line {n}" for n in range(45, 50)] and "line 44" not in result.stdout
    assert "Successfully Connected to container" in result.stdout
    assert f"revision {app['properties']['latestRevisionName']}" in result.stderr
    # The token came from getAuthToken (an ARM POST), never a shared key.
    posts = deployed.requests("POST", "/getAuthToken")
    assert len(posts) == 1 and "containerApps/" in posts[0]["path"]
    assert not deployed.requests("POST", "listKeys") and not deployed.requests("POST", "sharedKeys")


def test_json_gives_the_lines_as_data_and_refuses_follow(deployed):
    app = deployed.one("Microsoft.App/containerApps")
    deployed.standin.append_app_logs(app["id"], ["first", "second"])
    data = deployed.ok("logs", "--tail", "2")
    assert data["lines"][-2:] == ["first", "second"]
    assert data["source"]["kind"] == "console" and data["source"]["app"] == app["name"]
    deployed.standin.clear_requests()
    refused = deployed.cli("logs", "--follow", "--json")
    assert refused.code == 2 and refused.json["error"]["code"] == "JsonFollowUnsupported", refused
    assert not deployed.requests("POST", "/getAuthToken")   # refused before any Azure call


def test_follow_streams_new_lines_and_ctrl_c_ends_it(deployed):
    app = deployed.one("Microsoft.App/containerApps")
    deployed.standin.append_app_logs(app["id"], ["before"])
    # As from a terminal: SIGINT at its default disposition in the CLI (see test_faults.py).
    process = subprocess.Popen([sys.executable, "-m", "mlflow_aca", "logs", "--follow", "--tail", "1"],
                               cwd=deployed.directory, env=clean_environ(deployed.env()), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert _read_until(process, "before")
        deployed.standin.append_app_logs(app["id"], ["after 1", "after 2"])
        assert _read_until(process, "after 2")   # sent while the stream stays open
        os.kill(process.pid, signal.SIGINT)
        _out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "may still complete" not in err


def _read_until(process, text: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            return False
        if line.rstrip("\n") == text:
            return True
    return False


def test_system_logs_come_from_the_event_stream(deployed):
    app = deployed.one("Microsoft.App/containerApps")
    deployed.standin.append_app_logs(app["id"], ['{"Reason": "ReplicaScaled", "Msg": "scaled to 1"}'], system=True)
    data = deployed.ok("logs", "--system")
    assert data["source"] == {"kind": "system", "app": app["name"]}
    assert json.loads(data["lines"][-1])["Reason"] == "ReplicaScaled"


def test_job_logs_of_the_latest_execution(deployed):
    job = deployed.one("Microsoft.App/jobs")
    executions = deployed.arm("GET", job["id"].split(deployed.subscription_id, 1)[1] + "/executions"
                              "?api-version=2025-01-01")["value"]
    latest = max(executions, key=lambda e: e["properties"]["startTime"])
    deployed.standin.append_app_logs(latest["id"], ["INFO  [alembic] Running upgrade -> 0584bdc529eb"])
    data = deployed.ok("logs", "--job")
    assert data["source"]["kind"] == "job" and data["source"]["execution"] == latest["name"]
    assert data["lines"][-1].endswith("Running upgrade -> 0584bdc529eb")
    assert any("/jobs/" in r["path"] for r in deployed.requests("POST", "/getAuthToken"))


def test_not_deployed_is_the_same_condition_as_status(deployment):
    deployment.ok("provision")
    logs = deployment.cli("logs", "--json")
    status = deployment.cli("status", "--json")
    assert logs.code == status.code == 4, (logs, status)
    assert logs.json["error"]["code"] == "NotDeployed"
    human = deployment.cli("logs")
    assert human.code == 4 and "not deployed" in human.stderr and "Traceback" not in human.output


def test_scaled_to_zero_says_so(deployed):
    app = deployed.one("Microsoft.App/containerApps")
    deployed.standin.set_revision_state(app["id"], replicas=0)
    result = deployed.cli("logs", "--json")
    assert result.code == 3 and result.json["error"]["code"] == "NoReplicaRunning", result
    assert "scaled to zero" in result.json["error"]["message"]
    assert "--system" in result.json["error"]["hint"]


def test_refused_token_is_a_clear_error_and_never_printed(deployed):
    deployed.standin.refuse_log_tokens()
    result = deployed.cli("logs", "--verbose")
    assert result.code == 3, result
    assert "refused the log-stream token (HTTP 401)" in result.stderr and "Traceback" not in result.output
    tokens = deployed.standin.log_tokens()
    assert tokens and not any(token in result.output for token in tokens)
    deployed.standin.refuse_log_tokens(False)
    for args in (("logs",), ("logs", "--json"), ("logs", "--system", "--verbose"), ("logs", "--job", "--json")):
        shown = deployed.cli(*args)
        assert shown.code == 0, shown
        assert not any(token in shown.output for token in deployed.standin.log_tokens()), args
