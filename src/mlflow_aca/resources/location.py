"""The location check: the configured location must be one the subscription offers, or every
create would be refused one by one (LocationNotAvailableForResourceGroup, ...ForResourceType).
One GET of the subscription's location list before the resource group, the first write; the
nearest names are suggested. A plan reports the answer without failing, like the image check."""

from __future__ import annotations

import difflib

from mlflow_aca.errors import OperationError
from mlflow_aca.graph import Step, StepResult
from mlflow_aca.resources.base import Context

KEY = "location"
NOT_OFFERED = "LocationNotOffered"


class LocationCheck:
    key = KEY

    def step(self, ctx: Context) -> Step:
        return Step(self.key, f"location {ctx.settings.location}", lambda: self.run(ctx), ())

    def run(self, ctx: Context) -> StepResult:
        try:
            return self.check(ctx)
        except OperationError as error:
            # A plan shows the refusal deploy would meet; any other failure (no credential,
            # Azure unreachable) is the plan's own and fails it, as every other read would.
            if not ctx.dry_run or error.code != NOT_OFFERED:
                raise
            return StepResult("refused", f"{error.code}: {error.message} {error.hint}")

    def check(self, ctx: Context) -> StepResult:
        from mlflow_aca.azure.locations import subscription_locations

        wanted = _normal(ctx.settings.location)
        offered = subscription_locations(ctx.session)
        # ARM accepts the display name too ("West Europe") and answers with the name.
        if any(wanted in (_normal(loc.get("name")), _normal(loc.get("displayName"))) for loc in offered):
            return StepResult("ok", "offered by the subscription")
        names = sorted(str(loc.get("name")) for loc in offered if loc.get("name"))
        nearest = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
        suggestion = f" Nearest: {', '.join(nearest)}." if nearest else ""
        raise OperationError(
            f"The subscription does not offer the location {ctx.settings.location!r}.{suggestion}",
            code=NOT_OFFERED,
            hint=f"Set location to one of the subscription's {len(names)} locations "
            "(`az account list-locations -o table`); nothing was changed.")


def _normal(value: object) -> str:
    return str(value or "").replace(" ", "").lower()
