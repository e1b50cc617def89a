"""provision + deploy against the Azure stand-in with real durations scaled down, compared with
the critical path of the dependency graph (its longest chain of latencies).

Prints, from one run:
- wall time of provision + deploy (the product's own code, in process, as `up` runs it, and
  the two CLI commands end to end including interpreter start-up);
- that wall time divided by the critical path (target <= 1.15);
- the sum of all latencies: what a script doing one step after another would take;
- for a no-op rerun: requests made and writes (target: zero writes).

    python benchmarks/provision.py [--scale 100] [--poll 0.05] [--settle 0.1]

Run from the repository root (it starts the test stand-in from tests/standin).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.standin import standin_process  # noqa: E402
from tests.standin.latency import TYPICAL_SECONDS  # noqa: E402

TARGET = 1.15
# An existing image anyone may pull (the stand-in's catalog serves it): deploy checks it first.
IMAGE = "example.azurecr.io/mlflow:1"
# Which of the stand-in's latencies each step of the graph waits for.
STEP_LATENCY = {
    "resource_group": ["resourceGroups"], "identity": ["userAssignedIdentities"],
    "workspace": ["workspaces"], "storage_account": ["storageAccounts"], "blob_service": [],
    "blob_container": ["blobContainers"], "registry": ["registries"], "sql_server": ["servers"],
    "sql_firewall_azure": ["firewallRules"], "sql_firewall_operator": ["firewallRules"],
    "sql_database": ["databases"], "environment": ["managedEnvironments"],
    "role_blob_data": ["roleAssignments"], "role_acr_pull": ["roleAssignments"],
    "migration": ["jobs", "jobStart", "jobExecutions"], "app": ["containerApps"],
    "image_check": [],  # three registry requests, no modelled latency
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100, help="real durations divided by this")
    parser.add_argument("--poll", type=float, default=0.05, help="poll_interval setting (seconds)")
    # The run lease's Δ (lease.py) bounds a read and a write of ARM's: scaled like the latencies
    # (3 s / 100), but not below what the stand-in itself takes to answer one.
    parser.add_argument("--settle", type=float, default=0.1, help="lease_settle_seconds setting (seconds)")
    args = parser.parse_args()

    # The stand-in runs in its own process, as Azure would: sharing this interpreter's GIL
    # with the product's worker threads would slow both and blur the measurement.
    with standin_process("--latency", f"real/{args.scale:g}", cwd=str(ROOT)) as (standin, env), tempfile.TemporaryDirectory() as work:
        for key in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"):
            os.environ.pop(key, None)
        os.environ.update(env)
        settings_text = (f'name = "bench"\nlocation = "westeurope"\npoll_interval = {args.poll}\nconcurrency = 8\n'
                         f"lease_settle_seconds = {args.settle}\n")

        standin.add_registry_image(IMAGE, anonymous=True)
        in_process, steps = run_in_process(settings_text, work)
        standin.reset()
        standin.add_registry_image(IMAGE, anonymous=True)
        standin.set_latency(1.0 / args.scale)
        cli_seconds = run_cli(settings_text, work, env)

        standin.clear_requests()
        run_cli(settings_text, work, env)
        requests = standin.requests()
        # The run lease (lease.py) writes its tag on the identity: taken and given back once per
        # writing command, so two here by design; counted apart from writes to resources.
        lease = [r for r in requests if r["method"] == "PATCH" and "/userAssignedIdentities/" in r["path"]
                 and r["path"].endswith("/providers/Microsoft.Resources/tags/default")]
        writes = [r for r in requests if r["method"] in ("PUT", "PATCH", "DELETE") and r not in lease]

    from mlflow_aca.graph import critical_path

    seconds = {key: sum(TYPICAL_SECONDS[k] for k in STEP_LATENCY.get(key, [])) / args.scale
               for key in (s.key for s in steps)}
    critical, path = critical_path(steps, seconds)
    total = sum(seconds.values())
    print(f"latencies: real durations / {args.scale:g}; poll_interval {args.poll}s; "
          f"lease_settle_seconds {args.settle}s; {len(steps)} steps")
    print(f"critical path          {critical:7.2f}s  ({' -> '.join(path)})")
    print(f"script (sum of steps)  {total:7.2f}s  {total / critical:5.2f}x the critical path")
    ratio = in_process / critical
    print(f"provision+deploy       {in_process:7.2f}s  {ratio:5.2f}x the critical path "
          f"({'within' if ratio <= TARGET else 'OVER'} the {TARGET}x target)")
    print(f"  same via the CLI     {cli_seconds:7.2f}s  {cli_seconds / critical:5.2f}x "
          "(two commands, including interpreter start-up and SDK imports)")
    print(f"no-op rerun            {len(requests)} requests, {len(writes)} writes "
          f"({'as targeted' if not writes else 'WRITES ON A NO-OP RERUN'}), plus {len(lease)} lease tag writes")
    return 0


def run_in_process(settings_text: str, work: str):
    """provision then deploy through the product's domain API, timed without start-up costs."""
    from mlflow_aca import deployment
    from mlflow_aca.config import load_settings
    from mlflow_aca.reporting import SilentReporter

    path = Path(work, "mlflow-aca.toml")
    path.write_text(settings_text)
    ctx = deployment.connect(load_settings(path))  # the stand-in comes from the environment
    # The graph `up` runs (provision + migration + app); its steps define the critical path.
    from mlflow_aca.resources.app import ContainerApp

    image = IMAGE
    steps = deployment.provision_steps(ctx) + deployment.app_steps(ctx, ContainerApp(image))
    started = time.perf_counter()
    deployment.provision(ctx, SilentReporter())
    deployment.deploy(ctx, SilentReporter(), image=image)
    elapsed = time.perf_counter() - started
    deployment.close(ctx)
    return elapsed, steps


def run_cli(settings_text: str, work: str, env: dict[str, str]) -> float:
    Path(work, "mlflow-aca.toml").write_text(settings_text)
    started = time.perf_counter()
    for command in (["provision"], ["deploy", "--image", IMAGE]):
        subprocess.run([sys.executable, "-m", "mlflow_aca", *command, "--json"], cwd=work,
                       env={**os.environ, **env}, check=True, capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
