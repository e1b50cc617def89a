"""Values Azure would reject are refused at load, naming what is allowed (issue 13, item 2)."""

from __future__ import annotations

import pytest

from mlflow_aca.config import load_settings
from mlflow_aca.errors import ConfigError

MINIMAL = {"name": "mlflow", "location": "westeurope"}


def refused(**values) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={}, overrides={**MINIMAL, **values})
    return raised.value.message


def test_serverless_max_vcores_must_be_a_size_that_exists():
    message = refused(sql_max_vcores=3)
    assert "sql_max_vcores" in message and "1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 32, 40, 80" in message
    assert load_settings(None, environ={}, overrides={**MINIMAL, "sql_max_vcores": 4}).sql_max_vcores == 4


def test_serverless_min_vcores_has_a_floor_per_size():
    message = refused(sql_max_vcores=40, sql_min_capacity=1)
    assert "sql_min_capacity" in message and "at least 5" in message
    assert load_settings(None, environ={}, overrides={**MINIMAL, "sql_max_vcores": 40,
                                                      "sql_min_capacity": 5}).sql_min_capacity == 5


@pytest.mark.parametrize("name", ["master", "Master", "model", "tempdb"])
def test_reserved_database_names(name):
    message = refused(sql_database_name=name)
    assert "sql_database_name" in message and "reserved" in message and "master, model, tempdb" in message


def test_tag_value_over_256_characters():
    message = refused(tags={"team": "x" * 257})
    assert "tags" in message and "256" in message
    load_settings(None, environ={}, overrides={**MINIMAL, "tags": {"team": "x" * 256}})


def test_tag_name_over_128_characters_because_the_storage_account_carries_it():
    message = refused(tags={"k" * 129: "v"})
    assert "128" in message and "storage account" in message


def test_at_most_48_tags_of_ones_own():
    message = refused(tags={f"t{i}": "v" for i in range(49)})
    assert "50" in message and "48" in message


@pytest.mark.parametrize(("key", "value"), [("max_replicas", True), ("cpu", True),
                                            ("sql_min_capacity", True), ("poll_interval", False)])
def test_a_boolean_where_a_number_is_expected(key, value):
    message = refused(**{key: value})
    assert key in message and "number" in message and "not true/false" in message


@pytest.mark.parametrize("image", ["python", "python:latest", "registry.example.com:5000/team/python"])
def test_base_image_needs_a_tag_or_digest(image):
    message = refused(base_image=image)
    assert "base_image" in message and "tag" in message and "digest" in message


def test_base_image_with_a_digest_is_accepted():
    digest = "python@sha256:" + "a" * 64
    assert load_settings(None, environ={}, overrides={**MINIMAL, "base_image": digest}).base_image == digest
