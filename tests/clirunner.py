"""Running the real CLI in a subprocess, the way users and automation run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Variables that would make a test depend on the machine it runs on.
_SCRUBBED_PREFIXES = ("MLFLOW_ACA_", "AZURE_", "IDENTITY_", "MSI_")


def clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(extra or {})
    return env


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:  # what pytest shows when an assertion fails
        return f"CliResult(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def run_cli(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> CliResult:
    completed = subprocess.run(
        [sys.executable, "-m", "mlflow_aca", *args],
        cwd=cwd, env=clean_environ(env), input=input, capture_output=True, text=True,
        timeout=timeout,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)
