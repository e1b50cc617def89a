"""The migration job runs before a new MLflow version's revision exists; the SQL password
(sql_auth = password) lives only in Container Apps secrets and never leaks."""

import json
from urllib.parse import quote, unquote, urlsplit

from mlflow_aca.config import Settings

JOB_START = "/providers/Microsoft.App/jobs/mlflow-migrate/start"
APP = "/providers/Microsoft.App/containerApps/mlflow"


def index_of(requests, method, fragment):
    return next(i for i, r in enumerate(requests) if r["method"] == method and fragment in r["path"])


def test_first_deploy_migrates_before_the_app_exists(deployment):
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    data = deployment.ok("deploy")
    row = next(r for r in data["resources"] if r["key"] == "migration")
    assert row["outcome"] == "ran" and "new app" in row["detail"]
    log = deployment.requests()
    assert index_of(log, "POST", JOB_START) < index_of(log, "PUT", APP)
    job = deployment.one("Microsoft.App/jobs")
    (container,) = job["properties"]["template"]["containers"]
    app = deployment.one("Microsoft.App/containerApps")
    assert container["image"] == app["properties"]["template"]["containers"][0]["image"]
    assert container["command"] == ["python", "-c"]
    (script,) = container["args"]  # mlflow db upgrade, the URI read from the environment in-process
    assert "from mlflow.db import upgrade" in script and "os.environ['MLFLOW_BACKEND_STORE_URI']" in script
    assert job["properties"]["configuration"]["triggerType"] == "Manual"


def test_same_version_does_not_migrate_again(deployment):
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    deployment.standin.clear_requests()
    data = deployment.ok("deploy")
    assert next(r for r in data["resources"] if r["key"] == "migration")["outcome"] == "ok"
    assert deployment.requests(method="POST", path=JOB_START) == []


def test_new_mlflow_version_migrates_first(deployment):
    deployment.write_config(mlflow_version="3.17.1")
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    deployment.standin.clear_requests()
    deployment.write_config(mlflow_version="3.17.2")
    deployment.push_template_image()  # the new version's image, pushed before deploying it
    plan = deployment.ok("plan")
    assert next(r for r in plan["resources"] if r["key"] == "migration")["outcome"] == "update"
    data = deployment.ok("deploy")
    row = next(r for r in data["resources"] if r["key"] == "migration")
    assert row["outcome"] == "ran" and "3.17.1 -> 3.17.2" in row["detail"]
    log = deployment.requests()
    job_put = index_of(log, "PUT", "/providers/Microsoft.App/jobs/mlflow-migrate")
    assert job_put < index_of(log, "POST", JOB_START) < index_of(log, "PUT", APP)
    app = deployment.one("Microsoft.App/containerApps")
    assert app["tags"]["mlflow-aca-mlflow-version"] == "3.17.2"


def test_failed_migration_leaves_the_app_alone(deployment):
    deployment.write_config(mlflow_version="3.17.1")
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    image_before = deployment.one("Microsoft.App/containerApps")["properties"]["template"]["containers"][0]["image"]
    job = deployment.one("Microsoft.App/jobs")
    deployment.standin.set_job_execution_outcome(job["id"], "Failed")
    deployment.standin.clear_requests()
    deployment.write_config(mlflow_version="3.17.2")
    deployment.push_template_image()  # the new version's image, pushed before deploying it
    result = deployment.cli("deploy")
    assert result.code == 3, result
    assert "MigrationFailed" in result.stderr and "keeps serving" in result.stderr
    assert deployment.requests(method="PUT", path=APP) == []
    app = deployment.one("Microsoft.App/containerApps")
    assert app["properties"]["template"]["containers"][0]["image"] == image_before


def secret_value(deployment, resource_type, name="backend-store-uri"):
    """The backend URI (or another secret) as Azure holds it: only listSecrets returns it."""
    resource = deployment.one(resource_type)
    path = resource["id"].split(deployment.subscription_id, 1)[1]
    listed = deployment.arm("POST", f"{path}/listSecrets?api-version=2026-07-01")
    return {item["name"]: item["value"] for item in listed["value"]}[name]


def test_password_auth_keeps_the_password_secret_and_stable(deployment):
    deployment.write_config(sql_auth="password")
    provisioned = deployment.cli("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    outputs = [provisioned, deployment.cli("deploy", "--json"), deployment.cli("deploy"),
               deployment.cli("status", "--json"), deployment.cli("config", "--json"), deployment.cli("plan")]
    assert all(o.code == 0 for o in outputs), outputs
    uri = secret_value(deployment, "Microsoft.App/containerApps")
    password = unquote(urlsplit(uri).password)
    assert len(password) >= 16
    # The app signs in as its own user; the job holds the administrator's URI (the server got that
    # password when created) and the app user's password, for its grant.
    admin_uri = secret_value(deployment, "Microsoft.App/jobs")
    admin_password = unquote(urlsplit(admin_uri).password)
    assert (urlsplit(uri).username, urlsplit(admin_uri).username) == ("mlflowadmin_app", "mlflowadmin")
    assert secret_value(deployment, "Microsoft.App/jobs", "app-db-password") == password != admin_password
    server = deployment.one("Microsoft.Sql/servers")
    assert server["properties"]["administratorLogin"] == "mlflowadmin"
    assert "administratorLoginPassword" in server["write_only"]

    # Nowhere else: not in any request outside secret fields (the log redacts only those),
    # not in any output, not in the app's or the job's command, args or plain environment.
    forms = {password, quote(password, safe=""), admin_password, quote(admin_password, safe="")}
    log_text = json.dumps(deployment.requests())
    assert not any(f in log_text for f in forms)
    for output in outputs:
        assert not any(f in output.output for f in forms)
    app = deployment.one("Microsoft.App/containerApps")
    container = app["properties"]["template"]["containers"][0]
    assert not any(f in json.dumps(container) for f in forms)
    assert not any(f in json.dumps(deployment.one("Microsoft.App/jobs")["properties"]["template"]) for f in forms)
    backend = next(e for e in container["env"] if e["name"] == "MLFLOW_BACKEND_STORE_URI")
    assert backend == {"name": "MLFLOW_BACKEND_STORE_URI", "secretRef": "backend-store-uri"}

    # Reruns do not rotate it: no password sent to the SQL server again.
    deployment.standin.clear_requests()
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    assert deployment.requests(method="PUT", path="/providers/Microsoft.Sql/servers/") == []
    assert secret_value(deployment, "Microsoft.App/containerApps") == uri
    assert secret_value(deployment, "Microsoft.App/jobs") == admin_uri


def test_password_is_reset_openly_when_no_copy_exists(make_deployment):
    deployment = make_deployment(sql_auth="password")
    deployment.ok("provision")  # the generated password is not kept anywhere after this run
    deployment.push_template_image()  # stands for build + push run earlier
    data = deployment.ok("deploy")
    detail = " ".join(r["detail"] for r in data["resources"])
    assert "password reset" in detail
    server_writes = [r for r in deployment.requests(method="PUT", path="/providers/Microsoft.Sql/servers/")
                     if r["path"].rstrip("/").endswith(Settings(name="mlflow", location="westeurope",
                                                                subscription_id=deployment.subscription_id).names.sql_server)]
    assert len(server_writes) == 2  # created, then reset by deploy
    assert server_writes[-1]["body"]["properties"]["administratorLoginPassword"] == "***"


def test_up_hands_the_password_over_without_a_reset(make_deployment):
    deployment = make_deployment(sql_auth="password")
    deployment.publish_public_image("example.azurecr.io/mlflow:1")  # an existing image anyone may pull
    data = deployment.ok("up", "--image", "example.azurecr.io/mlflow:1")
    assert "password reset" not in json.dumps(data)
    server = deployment.one("Microsoft.Sql/servers")
    writes = [r for r in deployment.requests(method="PUT") if r["path"].endswith("/servers/" + server["name"])]
    assert len(writes) == 1


def test_password_stays_out_of_error_text(make_deployment):
    from tests.standin import faults

    deployment = make_deployment(sql_auth="password")
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    uri = secret_value(deployment, "Microsoft.App/containerApps")
    password = unquote(urlsplit(uri).password)
    # The next app write is refused, with the request (password included) in Azure's hands.
    deployment.write_config(memory="4Gi", cpu=2.0)
    deployment.standin.add_fault(faults.server_error(APP + "$", status=500, method="PUT", times=20))
    failures = [deployment.cli("deploy"), deployment.cli("deploy", "--json"), deployment.cli("deploy", "--verbose")]
    assert all(f.code == 3 for f in failures), failures
    for failure in failures:
        assert password not in failure.output and quote(password, safe="") not in failure.output
    assert "InternalServerError" in failures[0].stderr


def test_a_changed_secret_value_is_still_written(make_deployment):
    """Comparing with listSecrets keeps reruns quiet without hiding a real change: a new
    database name changes the backend URI inside the secret, and nothing else of the job."""
    deployment = make_deployment(sql_auth="password")
    deployment.ok("provision")
    deployment.push_template_image()  # stands for build + push run earlier
    deployment.ok("deploy")
    before = secret_value(deployment, "Microsoft.App/jobs")
    deployment.write_config(sql_database_name="mlflow-two")
    deployment.ok("provision")
    deployment.standin.clear_requests()
    data = deployment.ok("deploy")
    rows = {r["key"]: r for r in data["resources"]}
    assert rows["migration"]["changes"] == ["properties.configuration.secrets[0].value"]
    assert "properties.configuration.secrets[0].value" in rows["app"]["changes"]
    assert len(deployment.requests(method="PUT", path="/providers/Microsoft.App/jobs/mlflow-migrate")) == 1
    after = secret_value(deployment, "Microsoft.App/jobs")
    assert after != before and "/mlflow-two?" in after
    assert unquote(urlsplit(after).password) == unquote(urlsplit(before).password)  # no reset
    app_uri = secret_value(deployment, "Microsoft.App/containerApps")
    assert "/mlflow-two?" in app_uri and urlsplit(app_uri).username == "mlflowadmin_app"
    assert unquote(urlsplit(app_uri).password) == secret_value(deployment, "Microsoft.App/jobs", "app-db-password")
