"""mlflow-aca: a shared, persistent, secured MLflow tracking server on Azure Container Apps."""

__version__ = "0.1.0"
