"""Faults are reported as what they are (issue 12 item 8): a failing identity endpoint is not a
missing sign-in, a registry's 502 is not a refusal, Ctrl-C during start-up is a clean exit 130,
a dropped POST is retried like any other request, and a killed password reset is waited out."""

from __future__ import annotations

import pytest

from tests.standin import faults

IDENTITY = r"^/msi/token$"


def test_an_identity_endpoint_answering_500_is_not_a_missing_sign_in(deployment):
    deployment.standin.add_fault(faults.server_error(IDENTITY, status=500, times=50))
    result = deployment.cli("plan")
    assert result.code == 3, result
    assert "az login" not in result.stderr and "CredentialUnavailable" not in result.stderr, result
    assert "HTTP 500" in result.stderr and "Traceback" not in result.output, result


def _registry_session(deployment):
    from mlflow_aca import deployment as deployments
    from mlflow_aca.config import load_settings
    from tests.integration.test_remote_build import _registry

    login_server = _registry(deployment) + ".azurecr.io"
    return deployments.connect(load_settings(deployment.directory / "mlflow-aca.toml")), login_server


def test_a_registry_answering_502_is_unavailable_not_denied(deployment, standin_env):
    from mlflow_aca import deployment as deployments
    from mlflow_aca.azure import acr_auth
    from mlflow_aca.errors import OperationError

    ctx, login_server = _registry_session(deployment)
    try:
        deployment.standin.add_fault(faults.server_error(r"^/oauth2/exchange$", status=502, method="POST", times=20))
        with pytest.raises(OperationError) as refused:
            acr_auth.sign_in(ctx.session, login_server)
        assert refused.value.code == "RegistryUnavailable", refused.value.message
        assert "HTTP 502" in refused.value.message and "AcrPush" not in (refused.value.hint or "")
        assert refused.value.code in acr_auth.CHECK_FAILURES  # `up --remote` builds anyway

        deployment.standin.clear_faults()  # one 502 is ridden out
        deployment.standin.add_fault(faults.server_error(r"^/oauth2/exchange$", status=502, method="POST"))
        assert acr_auth.sign_in(ctx.session, login_server).refresh_token
        assert deployment.standin.faults() == []
    finally:
        deployments.close(ctx)


# Python's `-m` start-up (runpy), with a SIGINT sent to the process itself the moment the CLI's
# imports reach Typer: a real Ctrl-C at a moment a test can choose.
_INTERRUPTED_IMPORTS = """
import os, runpy, signal, sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "typer":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Interrupt())
sys.argv[0] = "mlflow-aca"
if sys.argv[1:2] == ["--script"]:  # what pip's console script runs: `sys.exit(main())`
    del sys.argv[1]
    from mlflow_aca.__main__ import main
    sys.exit(main())
runpy.run_module("mlflow_aca", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("entry", [[], ["--script"]], ids=["python-m", "console-script"])
def test_ctrl_c_during_start_up_imports_exits_130_without_a_traceback(tmp_path, entry):
    import signal
    import subprocess
    import sys

    from tests.clirunner import clean_environ

    completed = subprocess.run([sys.executable, "-c", _INTERRUPTED_IMPORTS, *entry, "plan"], cwd=tmp_path,
                               env=clean_environ(), capture_output=True, text=True, timeout=60,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert completed.returncode == 130, completed
    assert "Traceback" not in completed.stderr and "Interrupted" in completed.stderr, completed


SHARED_KEYS = r"/Microsoft\.OperationalInsights/workspaces/[^/]+/sharedKeys$"
JOB_START = r"/Microsoft\.App/jobs/[^/]+/start$"
LIST_SECRETS = r"/Microsoft\.App/(containerApps|jobs)/[^/]+/listSecrets$"


def test_a_dropped_post_is_retried_like_other_requests(deployment):
    # Each POST the tool sends loses its connection once (the request sent, no answer), as a GET
    # or PUT may: azure-core retries those, and these POSTs only read or start what a rerun would.
    deployment.standin.add_fault(faults.dropped(SHARED_KEYS, method="POST"))
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.standin.add_fault(faults.dropped(JOB_START, method="POST"))
    deployment.ok("deploy")
    deployment.standin.add_fault(faults.dropped(LIST_SECRETS, method="POST", times=2))
    deployment.ok("deploy")
    assert deployment.standin.faults() == []
    dropped = [r for r in deployment.requests("POST") if r["status"] == 0]
    assert len(dropped) >= 2, dropped


def test_a_rerun_after_a_killed_password_reset_waits_for_the_server(make_deployment):
    import subprocess
    import sys
    import time

    from tests.clirunner import clean_environ

    deployment = make_deployment(sql_auth="password")
    deployment.ok("provision")  # the generated password is kept nowhere after this run
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.write_config(poll_interval=0.2, lease_seconds=5)
    deployment.standin.set_latency(0.1)  # a server update takes 7.5 s
    deployment.standin.clear_requests()
    process = subprocess.Popen([sys.executable, "-m", "mlflow_aca", "deploy"], cwd=deployment.directory,
                               env=clean_environ(deployment.env()), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not [r for r in deployment.requests("PUT", "/providers/Microsoft.Sql/servers/")
                   if r["status"] in (200, 201, 202) and "administratorLoginPassword" in (r.get("body") or {})
                   .get("properties", {})]:
            assert time.monotonic() < deadline and process.poll() is None, "deploy never reset the password"
            time.sleep(0.05)
    finally:
        process.kill()  # killed with the reset under way: its new password is lost with it
        process.wait()
    # The killed run's lease (lease.py) holds the deployment until it expires: what an operator
    # would wait for, shortened here.
    deployment.wait_for_lease_expiry()
    result = deployment.cli("deploy", "--json")
    assert result.code == 0, result
    assert "password reset" in result.stdout
    refused = [r for r in deployment.requests("PUT", "/providers/Microsoft.Sql/servers/") if r["status"] == 409]
    assert refused, "the rerun did not meet the server still busy (the test's premise)"
