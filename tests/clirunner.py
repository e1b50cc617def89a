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


@dataclass
class TtyResult:
    code: int
    transcript: str  # what the terminal showed, colours and cursor moves removed
    answered: list[str]


def run_cli_on_tty(*args: str, answers: list[tuple[str, str]], cwd: Path | str,
                   env: dict[str, str] | None = None, timeout: float = 60) -> TtyResult:
    """Run the CLI on a pseudo-terminal (stdin, stdout and stderr all a TTY, as for a person)
    and answer each prompt, in order, when its text appears."""
    import os
    import pty
    import re
    import time

    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "mlflow_aca", *args], stdin=terminal, stdout=terminal,
                               stderr=terminal, cwd=cwd, env=clean_environ(env))
    os.close(terminal)
    transcript, pending, answered = b"", list(answers), []
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            transcript += os.read(controller, 4096)
        except OSError:
            break
        if pending and pending[0][0].encode() in transcript:
            prompt, reply = pending.pop(0)
            os.write(controller, reply.encode() + b"\n")
            answered.append(prompt)
    process.wait(timeout=30)
    while True:  # what is still buffered after the process ended
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        transcript += chunk
    os.close(controller)
    # Lines re-joined where the console wrapped them.
    text = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", transcript.decode(errors="replace")).split())
    return TtyResult(process.returncode, text, answered)
