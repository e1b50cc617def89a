"""The migration job is never started beside a running execution (issue 12 item 5, in part):
two `mlflow db upgrade` at once race on the same Alembic version table. Stand-in only."""

from __future__ import annotations

from mlflow_aca.resources.app import VERSION_TAG

EXECUTION = "Microsoft.App/jobs/executions"


def _provisioned(make_deployment, standin, **settings):
    standin.reset()
    standin.set_latency(0)
    deployment = make_deployment(**settings)
    deployment.ok("provision")
    deployment.push_template_image()
    return deployment


def test_a_running_execution_blocks_a_second_start(make_deployment, standin):
    deployment = _provisioned(make_deployment, standin)
    deployment.ok("deploy")
    rg, job = deployment.one("Microsoft.App/jobs")["id"].split("/")[4], deployment.one("Microsoft.App/jobs")["name"]
    standin.set_latency(0.1)  # an execution started by hand (or by a killed run) runs for 6 s
    deployment.arm("POST", f"/resourceGroups/{rg}/providers/Microsoft.App/jobs/{job}/start?api-version=2024-03-01")
    standin.set_latency(0)
    app = deployment.one("Microsoft.App/containerApps")
    # The deployed MLflow version recorded on the app differs from the settings: a migration is due.
    deployment.arm("PATCH", f"{app['id'].split(deployment.subscription_id, 1)[1]}/providers/Microsoft.Resources/"
                   "tags/default?api-version=2021-04-01",
                   {"operation": "Merge", "properties": {"tags": {VERSION_TAG: "2.0.0"}}})
    deployment.ok("deploy")
    executions = sorted(deployment.resources(EXECUTION), key=lambda e: e["properties"]["startTime"])
    assert len(executions) == 3, executions
    manual, ours = executions[1], executions[2]
    ended = manual["properties"].get("endTime")
    # failed on the old code: the deploy's upgrade started while the manual one was still running
    assert ended is not None and ours["properties"]["startTime"] >= ended, (manual, ours)
