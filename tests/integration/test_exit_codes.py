"""The same condition gives the same exit code and error code whichever command meets it
(issue 13): an app that does not exist is `status`'s "absent" (SPEC §7: 4) in `env` too."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("command", ["env", "status"])
def test_an_app_that_does_not_exist(deployment, command):
    result = deployment.cli(command, "--json")
    assert result.code == 4, result
    assert result.json["error"]["code"] == "NotDeployed", result
    human = deployment.cli(command)
    assert human.code == 4 and "[NotDeployed]" in human.stderr and "Traceback" not in human.output
