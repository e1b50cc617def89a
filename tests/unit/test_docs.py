import re
from pathlib import Path

from mlflow_aca.config.reference import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_reference_matches_the_model():
    text = README.read_text()
    match = re.search(r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", text, re.S)
    assert match, "README lacks the configuration reference markers"
    assert match.group(1) == markdown_table(), (
        "README's configuration table is stale: regenerate it with "
        "`python -m mlflow_aca.config.reference`")


def test_readme_names_the_two_setup_commands():
    text = README.read_text()
    assert "pip install . && mlflow-aca --help" in text
    assert "scripts/test.sh" in text
    assert "scripts/test.sh" in (README.parent / ".ci" / "run").read_text()
