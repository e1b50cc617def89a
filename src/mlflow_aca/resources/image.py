"""The image check: before the migration job or the app is written, the image they will run must
be there to pull. Azure does not check a reference when the app or job is written: a tag that was
never pushed surfaces minutes later as a failed revision (`MANIFEST_UNKNOWN: manifest tagged by
"<tag>" is not found`) or a failed job execution (Azure-Samples/call-center-voice-agent-
accelerator#3, microsoft/azure-container-apps#816, #836), by then with the app already changed.

- In the deployment's registry: signed in with the operator's Entra token, as `push` does
  (azure/acr_auth.py), then `HEAD` the manifest.
- Anywhere else: anonymously (distribution.py). The app and the job pull with the user-assigned
  identity from the deployment's registry only (app.py `pulled_with_identity`); there is no
  setting for another registry's credentials, so an image another registry serves only to
  signed-in clients would fail to pull: refused here, with how to copy it over.
- In `up` after a build and push of this run: the push step found or put the manifest there.

One step of the graph, beside the lookups and role grants; the job and the app depend on it (it
is in `ContainerApp.deps`, which the job shares). A dry run (plan, `deploy --dry-run`) reads the
same way but never fails on the answer: it reports `missing` or `unchecked` with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlflow_aca import distribution
from mlflow_aca.errors import MlflowAcaError, OperationError
from mlflow_aca.graph import Step, StepResult
from mlflow_aca.resources.base import Context, Pending

if TYPE_CHECKING:
    from mlflow_aca.resources.app import ContainerApp

KEY = "image_check"
NOT_FOUND = "ImageNotFound"
PRIVATE = "PrivateImage"


class ImageCheck:
    key = KEY

    def __init__(self, app: ContainerApp) -> None:
        self.app = app
        # The registry's login server tells whether the image is the deployment's; in `up`,
        # the build/push step publishes the reference.
        self.deps: tuple[str, ...] = ("registry", *((app.image_step,) if app.image_step else ()))

    def label(self, ctx: Context) -> str:
        if self.app.image:
            return f"image {self.app.image}"
        return f"image {ctx.settings.image_repository} (from the template)"

    def step(self, ctx: Context) -> Step:
        return Step(self.key, self.label(ctx), lambda: self.run(ctx), self.deps)

    def run(self, ctx: Context) -> StepResult:
        if not ctx.dry_run:
            return self.check(ctx)
        try:
            return self.check(ctx)
        except MlflowAcaError as error:
            # A plan shows what deploy would meet; only deploy stops on it.
            outcome = "missing" if error.code == NOT_FOUND else "unchecked"
            return StepResult(outcome, f"{error.code}: {error.message}" + (f" {error.hint}" if error.hint else ""))

    def check(self, ctx: Context) -> StepResult:
        if self.app.image_step:
            reference = ctx.output(self.app.image_step, "reference")
            return StepResult("ok", f"{reference}: in the registry (pushed or found by this run)")
        login_server = ctx.output("registry", "login_server")
        if isinstance(login_server, Pending):  # only in a dry run: the registry is still to create
            own = ctx.cloud.registry_login_server(ctx.names.registry)
            if self.app.image is None or distribution.locate(self.app.image).host.lower() == own:
                return StepResult("unchecked", f"the registry {own} does not exist yet, so neither does the image; "
                                  "`mlflow-aca up` builds and pushes it (or provision, then build and push)")
            return self._elsewhere(ctx, distribution.locate(self.app.image), str(own))
        image = self.app.image_reference(ctx)
        location = distribution.locate(image)
        if location.host.lower() == str(login_server).lower():
            return self._in_own_registry(ctx, location, str(login_server))
        return self._elsewhere(ctx, location, str(login_server))

    def _in_own_registry(self, ctx: Context, location: distribution.ImageLocation, login_server: str) -> StepResult:
        from mlflow_aca.azure import acr_auth

        login = acr_auth.sign_in(ctx.session, login_server)
        digest = acr_auth.manifest_digest(login, location.repository, location.reference)
        if digest is None:
            if self.app.image is None:
                raise OperationError(
                    f"The image {location.image} built from the template is not in the registry {login_server}: "
                    "it was never pushed (or was deleted).",
                    code=NOT_FOUND,
                    hint="Run `mlflow-aca build` and `mlflow-aca push` first, or `mlflow-aca up`, which builds and "
                    "pushes it; nothing was changed.")
            raise OperationError(
                f"The registry {login_server} has no {location.shown}.",
                code=NOT_FOUND,
                hint="Push it there first (`mlflow-aca push` pushes the template's image; `mlflow-aca up` builds "
                "and pushes it), or check the tag; nothing was changed.")
        return StepResult("ok", f"in {login_server} ({digest or 'found'})")

    def _elsewhere(self, ctx: Context, location: distribution.ImageLocation, login_server: str) -> StepResult:
        answer = distribution.anonymous_lookup(location)
        if answer.outcome == "found":
            return StepResult("ok", f"pullable anonymously from {location.registry} ({answer.digest or 'found'})")
        if answer.outcome == "missing":
            raise OperationError(
                f"The image {location.image} does not exist: {answer.detail}.", code=NOT_FOUND,
                hint="Check the reference (registry, repository, tag or digest); nothing was changed.")
        registry = ctx.names.registry
        raise OperationError(
            f"The image {location.image} cannot be pulled without credentials: {answer.detail}.",
            code=PRIVATE,
            hint=f"The app pulls only from the deployment's registry {login_server}, with its managed identity; "
            "there is no setting for another registry's credentials. Copy the image there, e.g. "
            f"`az acr import --name {registry} --source {location.image} --image {location.repository}:<tag> "
            "--username <user> --password <token>` (or docker pull, tag and push), then deploy "
            f"--image {login_server}/{location.repository}:<tag>; nothing was changed.")
