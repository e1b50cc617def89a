"""The migration job's spec, replayed with Docker against a database an older MLflow made.

`deploy` of a new MLflow version runs `mlflow db upgrade` as a Container Apps job before the new
revision exists. Here: deploy the older version (its job replayed creates the schema, its app
replayed records a run), then deploy the current version and replay the job the stand-in now
holds, exactly as Container Apps would run it (command, args, environment with the secretRef
resolved through the job's listSecrets; the same substitution as the app's). It must exit 0,
leave the schema at the current version's head, and the current app must then start and serve
the older version's data.

Why "starts after" and not also "refuses before": MLflow 3.17 adds tables, and a server that
finds tables missing upgrades the schema itself at start-up (the per-replica race the job is
there to avoid); it refuses ("out-of-date database schema") only when just columns changed,
which no installable older version offers against 3.17.2.
"""

from __future__ import annotations

import uuid

import pytest

from tests import services
from tests.clirunner import run_cli
from tests.integration import replay
from tests.integration.conftest import Deployment
from tests.integration.images import BUILD_TIMEOUT, image_settings, write_config

pytestmark = [pytest.mark.docker, pytest.mark.slow]

OLDER = "3.16.1"  # installs from this machine's index; its schema head predates 3.17's migrations
HEAD = ["python", "-c", "from mlflow.store.db.utils import _get_latest_schema_revision as head; print(head())"]


@pytest.fixture(scope="module")
def older_image(replay_engine, tmp_path_factory) -> str:
    """The product template with the older MLflow, built by the CLI like `product_image`, then
    pushed to and pulled from the local registry."""
    directory = tmp_path_factory.mktemp("older-image")
    write_config(directory, {"name": "mlflow", "location": "westeurope", **image_settings(), "mlflow_version": OLDER})
    built = run_cli("build", "--local", "--json", cwd=directory, timeout=BUILD_TIMEOUT,
                    env={"DOCKER_CONFIG": str(tmp_path_factory.mktemp("older-image-docker-config"))})
    assert built.code == 0, built
    return replay.publish(replay_engine, built.json["data"]["image"], services.require_registry())


def schema_head(engine, image: str) -> str:
    """The alembic head the image's MLflow expects."""
    return services.run_container(engine, image, HEAD).decode().strip()


def test_the_migration_job_upgrades_a_database_the_older_version_made(
        standin, tmp_path, replay_engine, replay_image, older_image, postgres_driver, monkeypatch):
    from mlflow import MlflowClient

    azurite, postgres = services.require_azurite(), services.require_postgres()
    deployment = Deployment(standin, tmp_path, {
        "sql_auth": "password", "mlflow_version": OLDER,  # the backend URI reaches the job by secretRef
        "storage_container_name": f"migrate-{uuid.uuid4().hex[:12]}"})
    blobs = replay.ensure_blob_container(azurite, deployment.settings["storage_container_name"], exists=True)
    old_head, new_head = schema_head(replay_engine, older_image), schema_head(replay_engine, replay_image)
    assert old_head != new_head

    def replayed(kind: str, database: str) -> replay.ContainerRun:
        resource = deployment.one(f"Microsoft.App/{kind}")
        run = replay.job_run if kind == "jobs" else replay.app_run
        return replay.substitute_for_local(
            run(resource, replay.list_secrets(deployment, resource)), azurite=azurite, postgres_driver=postgres_driver,
            database_url=postgres.url(database, driver="psycopg", for_container=True))

    def revision(database: str) -> list[tuple]:
        return replay.query(postgres, database, "SELECT version_num FROM alembic_version")

    try:
        with replay.fresh_database(postgres) as database:
            # The older version, deployed: its job creates the schema, its app records a run.
            deployment.ok("provision")
            deployment.ok("deploy", "--image", replay.deployable(deployment, older_image))
            code, logs = replay.run_job(replay_engine, replayed("jobs", database))
            assert code == 0, logs
            assert revision(database) == [(old_head,)]
            app = deployment.one("Microsoft.App/containerApps")
            fqdn = app["properties"]["configuration"]["ingress"]["fqdn"]
            for name, value in replay.ingress_environ(deployment, fqdn).items():
                monkeypatch.setenv(name, value)
            with replay.running_app(replay_engine, replayed("containerApps", database)) as running:
                standin.set_app_endpoint(app["id"], backend=running.backend)
                client = MlflowClient()
                run_id = client.create_run(client.create_experiment("before-the-upgrade")).info.run_id
                client.log_param(run_id, "made_by", OLDER)

            # The current version, deployed: the job the stand-in now holds runs the new image.
            del deployment.settings["mlflow_version"]  # the default: the version replay_image runs
            deployment.write_config()
            deployed = deployment.ok("deploy", "--image", replay.deployable(deployment, replay_image))
            assert next(r for r in deployed["resources"] if r["key"] == "migration")["outcome"] == "ran"
            job = replayed("jobs", database)
            assert job.image == replay_image
            code, logs = replay.run_job(replay_engine, job)
            assert code == 0, logs
            assert revision(database) == [(new_head,)]

            # The current server starts on the upgraded schema and serves what the older one wrote.
            with replay.running_app(replay_engine, replayed("containerApps", database)) as running:
                standin.set_app_endpoint(app["id"], backend=running.backend)
                assert "Updating database tables" not in running.logs(tail="all")  # the job did it
                assert MlflowClient().get_run(run_id).data.params == {"made_by": OLDER}
    finally:
        blobs.delete_container()
