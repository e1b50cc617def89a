"""Domain errors and the exit codes they map to (SPEC §7).

Everything the tool expects to go wrong is raised as a subclass of `MlflowAcaError`; the CLI's
error boundary turns it into one paragraph (or a JSON envelope) and an exit code. Anything else
is a bug and is reported as such.
"""

from __future__ import annotations

from enum import IntEnum


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
    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None,
                 data: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.hint = hint
        self.data = data  # what was learnt before failing, for --json (e.g. status's report)


class ConfigError(MlflowAcaError):
    exit_code = ExitCode.CONFIG
    default_code = "config_invalid"


class UsageError(MlflowAcaError):
    exit_code = ExitCode.USAGE
    default_code = "usage"


class OperationError(MlflowAcaError):
    """An Azure or Docker operation failed; `code` carries Azure's own error code when known."""

    exit_code = ExitCode.OPERATION
    default_code = "operation_failed"


class UnhealthyError(MlflowAcaError):
    exit_code = ExitCode.UNHEALTHY
    default_code = "unhealthy"


class NotAvailableError(OperationError):
    """A command whose work is not built yet: it must say so rather than pretend to succeed."""

    default_code = "not_implemented"
