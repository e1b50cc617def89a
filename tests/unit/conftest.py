import pytest

from tests.clirunner import clean_environ

@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """Unit tests see no MLFLOW_ACA_/AZURE_ variables and run in an empty directory."""
    for key in set(__import__("os").environ) - set(clean_environ()):
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"

