from mlflow_aca.resources.base import Pending, changed_paths


def test_desired_is_a_subset_of_what_azure_returns():
    desired = {"location": "westeurope", "properties": {"a": 1, "b": {"c": True}}}
    current = {"id": "/x", "location": "West Europe",
               "properties": {"a": 1, "b": {"c": True, "extra": 2}, "provisioningState": "Succeeded"}}
    assert changed_paths(desired, current) == []


def test_changes_are_reported_by_path():
    desired = {"properties": {"a": 1, "b": {"c": True}, "list": [1, 2]}, "tags": {"x": "1"}}
    current = {"properties": {"a": 2, "b": {"c": False}, "list": [1, 3]}, "tags": {}}
    assert changed_paths(desired, current) == ["properties.a", "properties.b.c", "properties.list[1]", "tags.x"]


def test_lists_compare_elementwise_and_by_length():
    desired = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    assert changed_paths(desired, {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2", "x": 0}]}) == []
    assert changed_paths(desired, {"env": [{"name": "A", "value": "1"}]}) == ["env"]
    assert changed_paths({"rules": []}, {"rules": None}) == []
    assert changed_paths({"rules": []}, {}) == []


def test_ids_and_keys_compare_case_insensitively():
    rid = "/subscriptions/s/resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"
    desired = {"identity": {rid: {}}, "properties": {"environmentId": rid}}
    current = {"identity": {rid.lower(): {"principalId": "p"}}, "properties": {"environmentId": rid.upper()}}
    assert changed_paths(desired, current) == []


def test_booleans_are_not_numbers():
    assert changed_paths({"enabled": True}, {"enabled": 1}) == ["enabled"]


def test_ignored_and_pending_values():
    desired = {"properties": {"secrets": [{"name": "s", "value": "x"}], "key": Pending("<later>")}}
    current = {"properties": {"secrets": [{"name": "s"}], "key": None}}
    assert changed_paths(desired, current, ignored=("properties.secrets[*].value",)) == []
    assert changed_paths(desired, current) == ["properties.secrets[0].value"]


def test_enum_settings_compare_without_case_and_other_strings_with_it():
    desired = {"properties": {"configuration": {"ingress": {"transport": "auto"}, "activeRevisionsMode": "Single"},
                              "template": {"containers": [{"name": "mlflow", "image": "acr.io/mlflow:1"}]}}}
    current = {"properties": {"configuration": {"ingress": {"transport": "Auto"}, "activeRevisionsMode": "single"},
                              "template": {"containers": [{"name": "mlflow", "image": "acr.io/mlflow:1"}]}}}
    assert changed_paths(desired, current) == []
    current["properties"]["template"]["containers"][0]["image"] = "acr.io/MLflow:1"
    assert changed_paths(desired, current) == ["properties.template.containers[0].image"]
