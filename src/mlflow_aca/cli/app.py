"""The Typer application every command module registers itself on."""

from typing import Annotated

import typer

from mlflow_aca import __version__

app = typer.Typer(
    name="mlflow-aca",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"mlflow-aca {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Run a shared, persistent, secured MLflow tracking server on Azure Container Apps:
    metadata in Azure SQL, artifacts in Blob Storage, image in ACR, managed identity throughout."""
