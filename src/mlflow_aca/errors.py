"""Domain errors and the exit codes they map to (SPEC §7).

Everything the tool expects to go wrong is raised as a subclass of `MlflowAcaError`; the CLI's
error boundary turns it into one paragraph (or a JSON envelope) and an exit code. Anything else
is a bug and is reported as such.
"""

from __future__ import annotations

import re
from enum import IntEnum

# The tool's own codes are lowercase words joined by underscores where they are written
# (`config_missing`); they are reported in Azure's style (`ConfigMissing`), the style of every
# code Azure Resource Manager returns, so automation sees one style. Codes that already have
# capitals (Azure's, or Graph's `Authorization_RequestDenied`) are theirs and pass unchanged.
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class ExitCode(IntEnum):
    OK = 0
    CONFIG = 1  # configuration or input error
    USAGE = 2  # command-line usage error
    OPERATION = 3  # an Azure or Docker operation failed
    UNHEALTHY = 4  # `status` found the deployment unhealthy or absent
    INTERRUPTED = 130


def first_line(exc: BaseException) -> str:
    """An exception's first line, for one-paragraph messages (SDK texts run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class MlflowAcaError(Exception):
    """An expected failure: a message for people, a stable code for automation, a hint."""

    exit_code: ExitCode = ExitCode.OPERATION
    default_code = "Error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None,
                 data: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = pascal_code(code or self.default_code)
        self.hint = hint
        self.data = data  # what was learnt before failing, for --json (e.g. status's report)


def pascal_code(code: str) -> str:
    """`config_missing` → `ConfigMissing`; any other spelling is kept as it is."""
    if not _SNAKE.fullmatch(code):
        return code
    return "".join(word[:1].upper() + word[1:] for word in code.split("_"))


class ConfigError(MlflowAcaError):
    exit_code = ExitCode.CONFIG
    default_code = "ConfigInvalid"


class UsageError(MlflowAcaError):
    exit_code = ExitCode.USAGE
    default_code = "Usage"


class OperationError(MlflowAcaError):
    """An Azure or Docker operation failed; `code` carries Azure's own error code when known."""

    exit_code = ExitCode.OPERATION
    default_code = "OperationFailed"


class UnhealthyError(MlflowAcaError):
    exit_code = ExitCode.UNHEALTHY
    default_code = "Unhealthy"


class NotDeployedError(UnhealthyError):
    """The container app does not exist. Every command that needs a running server says so
    with the exit code `status` gives for an absent deployment (SPEC §7: 4), so a script can
    test for it the same way whichever command it ran."""

    default_code = "NotDeployed"


class NotAvailableError(OperationError):
    """A command whose work is not built yet: it must say so rather than pretend to succeed."""

    default_code = "NotImplemented"
