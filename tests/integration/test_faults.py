"""Every fault the stand-in can inject ends in convergence or in a clear error (exit 3, Azure's
error code in the message, no traceback), and a rerun afterwards converges with no duplicates."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.clirunner import clean_environ
from tests.standin import faults

STORAGE = r"/providers/Microsoft\.Storage/storageAccounts/[^/]+$"
SQL_SERVER = r"/providers/Microsoft\.Sql/servers/[^/]+$"
ENVIRONMENT = r"/providers/Microsoft\.App/managedEnvironments/[^/]+$"
APP = r"/providers/Microsoft\.App/containerApps/[^/]+$"


def resource_counts(deployment):
    return Counter(r["type"].lower() for r in deployment.resources())


def assert_converges(deployment):
    """A clean rerun ends with every resource in place, once."""
    deployment.standin.clear_faults()
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    counts = resource_counts(deployment)
    duplicates = {t: n for t, n in counts.items() if n > 1 and "roleassignments" not in t
                  and "firewallrules" not in t and "databases" not in t and "userassignedidentities" not in t}
    assert duplicates == {}
    assert counts["microsoft.managedidentity/userassignedidentities"] == 2   # the app's, the migration's
    assert counts["microsoft.authorization/roleassignments"] == 2
    deployment.standin.clear_requests()
    deployment.ok("provision")
    assert deployment.writes() == []


@pytest.mark.parametrize("fault", [
    faults.throttled(STORAGE, retry_after=1, method="PUT"),
    faults.server_error(SQL_SERVER, status=500, method="PUT"),
    faults.server_error(ENVIRONMENT, status=503, method="GET", times=2),
    faults.dropped(r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/", method="GET"),
], ids=["429-retry-after", "500-on-put", "503-on-get", "dropped-connection"])
def test_transient_faults_are_ridden_out(deployment, fault):
    deployment.standin.add_fault(fault)
    deployment.ok("provision")
    assert deployment.standin.faults() == []  # the fault was hit
    assert_converges(deployment)


def test_principal_not_found_is_retried(deployment):
    deployment.standin.set_replication_delay(3)
    data = deployment.ok("provision")
    # role_blob_data_account is the retired account-wide grant: only ever removed.
    roles = [r for r in data["resources"] if r["key"].startswith("role_") and r["key"] != "role_blob_data_account"]
    assert {r["outcome"] for r in roles} == {"created"}
    refused = [r for r in deployment.requests(method="PUT", path="roleAssignments") if r["status"] == 400]
    assert len(refused) >= 3
    assert_converges(deployment)


@pytest.mark.parametrize(("fault", "code"), [
    (faults.lro_failed(SQL_SERVER, "ServerCreationFailed", method="PUT"), "ServerCreationFailed"),
    (faults.operation_in_progress(STORAGE, method="PUT"), "AnotherOperationInProgress"),
    (faults.missing_registration(ENVIRONMENT, "Microsoft.App", method="PUT"), "MissingSubscriptionRegistration"),
    (faults.server_error(r"/providers/Microsoft\.OperationalInsights/workspaces/[^/]+$", status=500,
                         method="PUT", times=20), "InternalServerError"),
], ids=["lro-failed", "operation-in-progress", "missing-registration", "persistent-500"])
def test_refusals_are_clear_errors_then_a_rerun_converges(deployment, fault, code):
    deployment.standin.add_fault(fault)
    result = deployment.cli("provision")
    assert result.code == 3, result
    assert code in result.stderr and "Hint:" in result.stderr
    assert "Traceback" not in result.output
    as_json = deployment.cli("provision", "--json") if deployment.standin.faults() else None
    if as_json is not None:
        assert as_json.code == 3 and as_json.json["error"]["code"] == code
    assert_converges(deployment)


def test_unhealthy_new_revision_fails_deploy(deployment, standin):
    """A revision that cannot start fails the deploy with Azure's reason. (A rerun then starts a
    new revision rather than finding the same failure: test_revision_recovery.py.)"""
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    standin.add_fault(faults.lro_failed(APP, "ContainerAppOperationError", "Failed to provision revision for "
                                        "container app 'mlflow'. Container 'mlflow' crashed: exit code 1",
                                        method="PUT"))
    result = deployment.cli("deploy")
    assert result.code == 3, result
    assert "ContainerAppOperationError" in result.stderr and "exit code 1" in result.stderr
    assert "Traceback" not in result.output


def test_missing_credentials(deployment):
    result = deployment.cli("provision", env={"IDENTITY_ENDPOINT": "", "IDENTITY_HEADER": ""})
    assert result.code == 1, result
    assert "CredentialUnavailable" in result.stderr and "az login" in result.stderr
    assert "Traceback" not in result.output


def test_taken_global_name(deployment):
    from mlflow_aca.config import Settings

    names = Settings(name="mlflow", location="westeurope", subscription_id=deployment.subscription_id).names
    deployment.standin.take_name("storage", names.storage_account)
    result = deployment.cli("provision")
    assert result.code == 3 and "StorageAccountAlreadyTaken" in result.stderr
    assert "storage_account_name" in result.stderr
    deployment.write_config(storage_account_name="stmlflowelsewhere1")
    assert_converges(deployment)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("after", [0.8, 2.5])
def test_interrupted_provision_converges_on_rerun(deployment, signum, after):
    # Real durations scaled down so the interrupt lands in the middle of long operations.
    deployment.standin.set_latency("real/100")
    deployment.write_config(poll_interval=0.05, lease_seconds=5)
    # As from a terminal: SIGINT at its default disposition in the CLI. A shell without job control
    # starts background jobs (`pytest ... &`) with SIGINT ignored, children inherit that, and
    # Python then installs no KeyboardInterrupt handler: the CLI would never see the Ctrl-C.
    process = subprocess.Popen([sys.executable, "-m", "mlflow_aca", "provision"], cwd=deployment.directory,
                               env=clean_environ(deployment.env()), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    os.kill(process.pid, signum)
    started = time.monotonic()
    _out, err = process.communicate(timeout=30)
    if signum == signal.SIGINT:
        waited = time.monotonic() - started
        assert waited < 5, f"Ctrl-C must not wait for Azure's operations ({waited:.1f} s):\n{err[-3000:]}"
        if process.returncode != 0:  # it may have finished before the signal
            assert process.returncode == 130, err
            assert "Interrupted" in err and "Traceback" not in err
    deployment.standin.set_latency(0)
    deployment.write_config(poll_interval=0)
    deployment.wait_for_lease_expiry()  # a killed run's lease holds the deployment until it expires
    assert_converges(deployment)
