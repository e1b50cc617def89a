"""`--adopt NAME`, shared by the commands that converge resources (provision, deploy, up, plan)."""

from __future__ import annotations

from typing import Annotated

import typer

ADOPT_HELP = ("Let this deployment manage an existing resource it did not create (its name or step "
              "key, e.g. sql_server; repeatable). It is converged to the configuration and tagged "
              "mlflow-aca-adopted; teardown never deletes it. Without it, the command stops before "
              "writing anything when such a resource exists.")

AdoptOption = Annotated[list[str] | None, typer.Option("--adopt", metavar="NAME", help=ADOPT_HELP,
                                                       show_default=False)]


def adopted(names: list[str] | None) -> frozenset[str]:
    return frozenset(name.strip() for name in names or () if name.strip())
