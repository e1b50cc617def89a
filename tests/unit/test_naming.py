import re

import pytest

from mlflow_aca import naming
from mlflow_aca.errors import ConfigError
from tests.values import OTHER_SUBSCRIPTION, SUBSCRIPTION

# (key, valid values, invalid values) — one invalid value per way the rule can be broken.
CASES = [
    ("name", ["ml", "mlflow-team", "a" * 24], ["m", "a" * 25, "1mlflow", "mlflow-", "ml--flow", "MLflow", "ml_flow"]),
    ("resource_group", ["rg", "rg-ml.flow_(1)", "r" * 90, "grüppe"], ["", "r" * 91, "rg.", "rg/x", "rg x"]),
    ("location", ["westeurope", "eastus2"], ["West Europe", "west-europe", "w"]),
    ("identity_name", ["abc", "my_id-1", "a" * 128], ["ab", "-id", "_id", "id.x", "a" * 129]),
    ("workspace_name", ["logs", "a-b-c1", "a" * 63], ["log", "-logs", "logs-", "lo_gs", "a" * 64]),
    ("storage_account_name", ["abc", "stmlflow123", "a" * 24], ["ab", "a" * 25, "stMlflow", "st-mlflow", "st_mlflow"]),
    ("storage_container_name", ["abc", "mlflow-artifacts", "1ab"], ["ab", "-abc", "abc-", "a--b", "ABC", "a" * 64]),
    ("registry_name", ["abcde", "acrMLflow1", "a" * 50], ["abcd", "a" * 51, "acr-mlflow", "acr_mlflow"]),
    ("sql_server_name", ["a", "mlflow-sql-1", "a" * 63], ["", "-sql", "sql-", "SQL", "sql_1", "a" * 64]),
    ("sql_database_name", ["mlflow", "ml flow.db", "a" * 128], ["", "ml/flow", "ml?", "mlflow.", "mlflow ", "a*", "a" * 129]),
    ("environment_name", ["ab", "mlflow-env", "a" * 60], ["a", "1env", "env-", "e--nv", "Env", "a" * 61]),
    ("app_name", ["ab", "mlflow", "a" * 32], ["a", "a" * 33, "1app", "app-", "a--pp", "App", "ap_p"]),
    ("job_name", ["ab", "mlflow-migrate", "a" * 32], ["a", "a" * 33, "9job", "job-", "j--ob"]),
    ("image_repository", ["mlflow", "team/mlflow-server", "a.b_c"], ["", "MLflow", "a//b", "a-", "-a"]),
]


@pytest.mark.parametrize(("key", "valid", "invalid"), CASES, ids=[c[0] for c in CASES])
def test_rules_accept_valid_and_refuse_invalid(key, valid, invalid):
    for value in valid:
        naming.check_name(key, value)
    for value in invalid:
        with pytest.raises(ConfigError) as raised:
            naming.check_name(key, value)
        message = raised.value.message
        rule = naming.RULES[key]
        # The error names the key, the value, the rule and a valid example.
        assert f"'{key}'" in message and repr(value) in message
        assert rule.rule in message and repr(rule.example) in message


def test_every_rule_example_is_valid():
    for key, rule in naming.RULES.items():
        assert rule.problem(rule.example) is None, key


def test_every_resource_name_has_a_rule():
    derived = naming.derive_names("mlflow", SUBSCRIPTION, "rg")
    assert set(derived) <= set(naming.RULES)


def test_suffix_is_deterministic_and_depends_on_each_input():
    base = naming.deployment_suffix(SUBSCRIPTION, "rg-a", "mlflow")
    assert base == naming.deployment_suffix(SUBSCRIPTION, "rg-a", "mlflow")
    assert re.fullmatch(r"[0-9a-f]{6}", base)
    assert base != naming.deployment_suffix(OTHER_SUBSCRIPTION, "rg-a", "mlflow")
    assert base != naming.deployment_suffix(SUBSCRIPTION, "rg-b", "mlflow")
    assert base != naming.deployment_suffix(SUBSCRIPTION, "rg-a", "mlflow2")
    # Resource group names are case-insensitive in Azure: the same group gives the same suffix.
    assert base == naming.deployment_suffix(SUBSCRIPTION.upper(), "RG-A", "mlflow")


@pytest.mark.parametrize("name", ["ab", "a1", "mlflow", "x" * 24, "team-a-b-c-d-e-f-g-h-i-j", "a-1"])
def test_derived_names_obey_every_rule(name):
    derived = naming.derive_names(name, SUBSCRIPTION, "rg-" + name)
    for key, value in derived.items():
        assert naming.RULES[key].problem(value) is None, (key, value)


def test_globally_unique_names_carry_the_suffix():
    suffix = naming.deployment_suffix(SUBSCRIPTION, "rg", "mlflow")
    derived = naming.derive_names("mlflow", SUBSCRIPTION, "rg")
    for key, rule in naming.RULES.items():
        if rule.globally_unique:
            assert derived[key].endswith(suffix), key
