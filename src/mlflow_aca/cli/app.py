"""The Typer application every command module registers itself on."""

import typer

app = typer.Typer(
    name="mlflow-aca",
    help="Run a shared, persistent, secured MLflow tracking server on Azure Container Apps: "
    "metadata in Azure SQL, artifacts in Blob Storage, image in ACR, managed identity throughout.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
