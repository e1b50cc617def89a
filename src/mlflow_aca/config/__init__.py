"""Configuration: the model (`model`), loading it (`load`) and writing a commented file (`write`)."""

from mlflow_aca.config.load import DEFAULT_CONFIG_PATH, coerce_text, load_settings, validate_settings
from mlflow_aca.config.model import Names, Settings

__all__ = ["DEFAULT_CONFIG_PATH", "Names", "Settings", "coerce_text", "load_settings", "validate_settings"]
