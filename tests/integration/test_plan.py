"""`plan` reads like terraform's: a summary line (also as data), each change with its current
and planned values (secrets masked), no false drift, and a labelled time column."""

from __future__ import annotations

import json
import re

JOB = "Microsoft.App/jobs"


def rows(data):
    return {row["key"]: row for row in data["resources"]}


def test_blob_soft_delete_is_created_in_plan_and_in_provision(deployment):
    planned = rows(deployment.ok("plan"))["blob_service"]
    provisioned = rows(deployment.ok("provision"))["blob_service"]
    # It comes with the new account: not an "update" of a service that was never there.
    assert (planned["outcome"], provisioned["outcome"]) == ("create", "created"), provisioned
    assert rows(deployment.ok("plan"))["blob_service"]["outcome"] == "ok"


def test_summary_and_values_of_each_change(deployment):
    fresh = deployment.ok("plan")
    # Every resource to create but the sign-in assignments (none listed) and the retired
    # account-wide blob grant (none to remove); the image and location checks are not resources
    # and are not counted.
    resources = len(fresh["resources"]) - 2
    assert fresh["summary"] == {"create": resources - 2, "change": 0, "unchanged": 2, "run": 1}
    deployment.ok("provision")
    deployment.write_config(log_retention_days=60)
    data = deployment.ok("plan")
    workspace = rows(data)["workspace"]
    assert workspace["diff"] == [{"path": "properties.retentionInDays", "old": "30", "new": "60"}]
    # Nothing deployed yet: the job and the app are to create, the migration to run.
    assert data["summary"] == {"create": 2, "change": 1, "unchanged": resources - 3, "run": 1}
    human = deployment.cli("plan")
    assert human.code == 0, human
    assert re.search(r"resource\s+read\s+action", human.stdout)  # the time column says what it is
    assert "properties.retentionInDays: 30 -> 60" in human.stdout
    assert f"Plan: 2 to create, 1 to change, {resources - 3} unchanged." in human.stdout


def test_plan_with_the_deployed_image_shows_no_drift(deployment):
    deployment.ok("provision")
    image = deployment.publish_public_image()
    deployment.ok("deploy", "--image", image)
    data = deployment.ok("plan", "--image", image)
    assert {k: r["outcome"] for k, r in rows(data).items() if r["outcome"] != "ok"} == {}
    assert data["summary"]["change"] == 0 and data["summary"]["create"] == 0
    # Without --image the plan is for `deploy` without it: back to the template's image, said so.
    template = deployment.push_template_image()
    bare = deployment.ok("plan")
    job, app = rows(bare)["migration"], rows(bare)["app"]
    expected = {"path": "properties.template.containers[0].image", "old": json.dumps(image),
                "new": json.dumps(template)}
    assert job["outcome"] == app["outcome"] == "update"
    assert app["diff"] == [expected]
    # The job's grant init container runs the same image.
    assert job["diff"] == [{**expected, "path": "properties.template.initContainers[0].image"}, expected]
    assert "no run: schema already at MLflow" in job["detail"]  # a definition change, no upgrade
    human = deployment.cli("plan")
    assert f"The app runs {image}" in human.stdout and "Pass the same --image" in human.stdout
    assert deployment.cli("plan", "--image", "Not A Reference").code == 1


def test_secret_values_never_shown(make_deployment):
    deployment = make_deployment(sql_auth="password")
    deployment.ok("provision")
    deployment.push_template_image()
    deployment.ok("deploy")
    job = deployment.one(JOB)
    path = job["id"].split(f"/subscriptions/{deployment.subscription_id}", 1)[1]
    # The job holds the administrator's URI first, then the app user's password (for its grant).
    names = [secret["name"] for secret in job["properties"]["configuration"]["secrets"]]
    assert names == ["backend-store-uri", "app-db-password"]
    values = {item["name"]: item["value"] for item in deployment.arm(
        "POST", f"{path}/listSecrets?api-version=2025-01-01")["value"]}
    stored = deployment.standin.resources(JOB)[0]
    planted = "mssql+pyodbc://mlflowadmin:Planted-Secret-42@elsewhere.example/mlflow"
    body = {key: stored[key] for key in ("location", "identity", "properties", "tags")}
    values["backend-store-uri"] = planted
    body["properties"]["configuration"]["secrets"] = [{"name": name, "value": values[name]} for name in names]
    deployment.arm("PUT", f"{path}?api-version=2025-01-01", body)
    data = deployment.ok("plan")
    change = rows(data)["migration"]
    assert change["outcome"] == "update"
    assert change["diff"] == [{"path": "properties.configuration.secrets[0].value",
                               "old": "(secret)", "new": "(secret)"}]
    human = deployment.cli("plan")
    for output in (json.dumps(data), human.stdout, human.stderr):
        assert "Planted-Secret" not in output and "Planted" not in output
    assert "secrets[0].value: (secret) -> (secret)" in human.stdout


def test_location_the_subscription_does_not_offer_is_refused_before_any_write(deployment):
    deployment.write_config(location="westeurop")
    result = deployment.cli("provision", "--json")
    assert result.code != 0, result
    error = result.json["error"]
    assert error["code"] == "LocationNotOffered" and "Nearest: westeurope" in error["message"], error
    assert deployment.writes() == [] and deployment.resources() == []
    listed = deployment.requests(method="GET", path=f"/subscriptions/{deployment.subscription_id}/locations")
    assert len(listed) == 1
    # A plan reports it without failing, like the image check.
    planned = rows(deployment.ok("plan"))["location"]
    assert planned["outcome"] == "refused" and "westeurope" in planned["detail"]
