"""A failed revision is replaced by asking for a new one: a fresh template.revisionSuffix, sent
with that one PUT only."""

import re

from mlflow_aca.resources.app import revision_failed, with_new_revision
from mlflow_aca.resources.base import changed_paths

# azure-cli containerapp _validators.py validate_revision_suffix.
SUFFIX = re.compile(r"^[a-z0-9](?!.*-{2})([-a-z0-9]*[a-z0-9])?$")


def desired() -> dict:
    return {"location": "westeurope", "properties": {"template": {"containers": [{"name": "mlflow", "image": "x"}]}}}


def test_a_new_suffix_each_time_and_the_desired_state_untouched():
    want = desired()
    first, second = with_new_revision(want), with_new_revision(want)
    suffixes = [d["properties"]["template"]["revisionSuffix"] for d in (first, second)]
    assert suffixes[0] != suffixes[1] and all(SUFFIX.match(s) for s in suffixes)
    assert "revisionSuffix" not in want["properties"]["template"]
    assert first["properties"]["template"]["containers"] == want["properties"]["template"]["containers"]


def test_the_suffix_azure_keeps_is_no_difference_on_the_next_run():
    held = with_new_revision(desired())   # what GET returns after the recovering PUT
    assert changed_paths(desired(), held) == []


def test_failed_means_provisioning_or_running_failed():
    assert revision_failed({"provisioningState": "Failed"})
    assert revision_failed({"provisioningState": "Provisioned", "runningState": "Failed"})
    assert not revision_failed({"provisioningState": "Provisioned", "runningState": "Degraded"})
    assert not revision_failed({"provisioningState": "Provisioning", "runningState": "Processing"})
