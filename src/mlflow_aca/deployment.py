"""provision, deploy, plan and up: the desired-state graph of a deployment and its execution."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlflow_aca.azure.roles import ACR_PULL, STORAGE_BLOB_DATA_CONTRIBUTOR
from mlflow_aca.azure.session import AzureSession
from mlflow_aca.config import Settings
from mlflow_aca.graph import Step, StepResult, run_graph
from mlflow_aca.lease import Lease, held
from mlflow_aca.resources.app import ContainerApp
from mlflow_aca.resources.base import Context, Resource
from mlflow_aca.resources.environment import Environment
from mlflow_aca.resources.group import ResourceGroup
from mlflow_aca.resources.identity import Identity, MigrationIdentity
from mlflow_aca.resources.image import ImageCheck
from mlflow_aca.resources.job import MigrationJob
from mlflow_aca.resources.location import LocationCheck
from mlflow_aca.resources.ownership import preflight
from mlflow_aca.resources.registry import Registry
from mlflow_aca.resources.roles import RetiredRoleAssignment, RoleAssignment
from mlflow_aca.resources.signin import signin_resources
from mlflow_aca.resources.sql import SqlDatabase, firewall_rules, sql_server_resources
from mlflow_aca.resources.storage import BlobContainer, BlobService, StorageAccount
from mlflow_aca.resources.workspace import Workspace

# What the app needs to exist before its first revision can start.
APP_PREREQUISITES = ("identity", "migration_identity", "registry", "environment", "storage_account",
                     "blob_container", "sql_database")


def connect(settings: Settings, *, dry_run: bool = False) -> Context:
    """A context for one command: the cloud (a custom cloud's metadata is read here), the
    subscription and a lazily authenticated Azure session."""
    cloud = settings.cloud_info()
    session = AzureSession(cloud, settings.require_subscription(), poll_interval=settings.poll_interval)
    return Context(settings=settings, cloud=cloud, session=session, dry_run=dry_run)


def role_assignments() -> list[RoleAssignment]:
    """The app identity's Azure roles (the migration identity has none): blob data on the artifact
    container only (its ARM id, .../blobServices/default/containers/<c>, is a valid scope for
    Azure RBAC: learn.microsoft.com/azure/storage/blobs/assign-azure-role-data-access,
    "Resource scope"), AcrPull on the registry. Versions before the container scope granted blob
    data on the whole account: that grant is removed (`role_blob_data_account`)."""
    return [
        RoleAssignment("role_blob_data", STORAGE_BLOB_DATA_CONTRIBUTOR, "Storage Blob Data Contributor",
                       "blob_container"),
        RoleAssignment("role_acr_pull", ACR_PULL, "AcrPull", "registry"),
        RetiredRoleAssignment("role_blob_data_account", STORAGE_BLOB_DATA_CONTRIBUTOR,
                              "Storage Blob Data Contributor", "storage_account", replaced_by="role_blob_data"),
    ]


def infrastructure(ctx: Context) -> list[Resource]:
    """Every resource `provision` converges, in no particular order: the graph orders them."""
    return [
        ResourceGroup(), Identity(), MigrationIdentity(), Workspace(), StorageAccount(), BlobService(), BlobContainer(),
        Registry(), *sql_server_resources(ctx), *firewall_rules(ctx),
        SqlDatabase(entra=ctx.settings.sql_auth == "entra"), Environment(),
        *role_assignments(), *signin_resources(ctx),
    ]


def provision_steps(ctx: Context) -> list[Step]:
    """Every resource, the resource group (the first write, which all others follow) after the
    location check."""
    check = LocationCheck()
    return [check.step(ctx)] + [resource.step(ctx, deps=(check.key,)) if resource.key == "resource_group"
                                else resource.step(ctx) for resource in infrastructure(ctx)]


def deploy_steps(ctx: Context, app: ContainerApp) -> list[Step]:
    """Look up what provision made (absence is an error), ensure the app's role grants, then the app."""
    by_key = {resource.key: resource for resource in infrastructure(ctx)}
    steps = [by_key[key].step(ctx, "lookup", deps=()) for key in APP_PREREQUISITES]
    steps += [role.step(ctx) for role in role_assignments()]
    # Sign-in is converged on every deploy too: the registration's redirect URI follows the
    # app, and the assignments follow auth_allowed_principals.
    steps += [resource.step(ctx) for resource in signin_resources(ctx)]
    return steps + app_steps(ctx, app)


def app_steps(ctx: Context, app: ContainerApp) -> list[Step]:
    """The image check, the migration job, then the app: both run the image, so neither is
    written before it is known to be there to pull (it is in `app.deps`, which the job shares);
    a new MLflow version's schema is upgraded before the revision that needs it exists."""
    job = MigrationJob(app)
    signin = tuple(resource.key for resource in signin_resources(ctx))
    return [ImageCheck(app).step(ctx), job.step(ctx), app.step(ctx, deps=(*app.deps, job.key, *signin))]


@dataclass
class Outcome:
    """What a converging command reports: each step's result, and the app's URL if known."""

    results: dict[str, StepResult]
    labels: dict[str, str]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        resources = [
            {"key": key, "resource": self.labels.get(key, key), "outcome": result.outcome,
             "detail": result.detail, "changes": result.data.get("changes", []),
             "seconds": round(result.seconds, 2)}
            for key, result in self.results.items()
        ]
        data: dict[str, Any] = {"resources": resources}
        fqdn = self.outputs.get("app", {}).get("fqdn")
        if fqdn:
            data["url"] = f"https://{fqdn}"
        return data

    @property
    def writes(self) -> int:
        return sum(1 for r in self.results.values() if r.outcome in ("created", "updated", "deleted"))


def execute(ctx: Context, steps: Iterable[Step], reporter: Any) -> Outcome:
    steps = list(steps)
    results = run_graph(steps, reporter=reporter, concurrency=ctx.settings.concurrency)
    labels = {step.key: step.label for step in steps}
    return Outcome(results={s.key: results[s.key] for s in steps}, labels=labels, outputs=ctx.outputs)


def claim_all(ctx: Context, *, app: ContainerApp | None = None, lookups: tuple[str, ...] = ()) -> None:
    """Before any write, and in plans too: every existing resource the command touches is the
    tool's own or adopted (ownership.preflight). `lookups` are only read (deploy's prerequisites)."""
    resources: list[Resource] = list(infrastructure(ctx))
    if lookups:
        resources = [r for r in resources if r.key in lookups]
    if app is not None:
        resources += [app, MigrationJob(app)]
    preflight(ctx, resources, lookups=lookups)


# Writing commands hold the deployment's lease (lease.py). It is taken in a thread from the
# start, beside the ownership preflight and the graph's reads; the session holds every write
# until it is confirmed, so the preflight and reads cost nothing extra and no write reaches Azure
# before it (a first provision's group and identity excepted: lease.py's docstring).
def provision(ctx: Context, reporter: Any) -> Outcome:
    with held(ctx, "provision", creates_identity=True) as lease:
        claim_all(ctx)
        return _execute(ctx, provision_steps(ctx), reporter, lease)


def deploy(ctx: Context, reporter: Any, *, image: str | None = None) -> Outcome:
    app = ContainerApp(image)
    with held(ctx, "deploy", creates_identity=False) as lease:
        claim_all(ctx, app=app, lookups=APP_PREREQUISITES)
        return _execute(ctx, deploy_steps(ctx, app), reporter, lease)


def up(ctx: Context, reporter: Any, *, image_steps: list[Step] | None = None,
       image: str | None = None) -> Outcome:
    """provision + deploy as one graph: the app waits only for what it needs, and image work
    (when given) overlaps provisioning."""
    image_steps = image_steps or []
    app = ContainerApp(image, image_step=image_steps[-1].key if image_steps else None)
    with held(ctx, "up", creates_identity=True) as lease:
        claim_all(ctx, app=app)
        return _execute(ctx, provision_steps(ctx) + image_steps + app_steps(ctx, app), reporter, lease)


def _execute(ctx: Context, steps: list[Step], reporter: Any, lease: Lease | None) -> Outcome:
    if lease is None:  # a dry run
        return execute(ctx, steps, reporter)
    return lease.finish(lambda: execute(ctx, lease.wrap(steps), reporter))


def plan_provision(ctx: Context, reporter: Any) -> Outcome:
    assert ctx.dry_run, "a plan needs a dry-run context"
    claim_all(ctx)
    return execute(ctx, provision_steps(ctx), reporter)


def plan(ctx: Context, reporter: Any, *, image: str | None = None) -> Outcome:
    """provision + deploy read-only: every resource's create / update (fields) / ok."""
    assert ctx.dry_run, "plan needs a dry-run context"
    app = ContainerApp(image)
    claim_all(ctx, app=app)
    return execute(ctx, provision_steps(ctx) + app_steps(ctx, app), reporter)


def close(ctx: Context) -> None:
    session: AzureSession = ctx.session
    session.close()
