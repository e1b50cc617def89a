"""Redaction on every human output path (issue 12, item 6): the Rich live display's labels,
status texts and log lines, and the human result tables, on a real terminal."""

from __future__ import annotations

import os
import pty
import sys
import threading
import time
from types import SimpleNamespace

from mlflow_aca.cli.render import outcome_table
from mlflow_aca.cli.runtime import Run
from mlflow_aca.redaction import register_secret
from mlflow_aca.reporting import RichReporter

SECRET = "Pw-live-display-9f3c1e7a"


class Terminal:
    """A pseudo-terminal as the process's stdout and stderr, drained by a thread (a full pty
    buffer would block the writer)."""

    def __init__(self) -> None:
        self.controller, terminal = pty.openpty()
        self.stream = os.fdopen(terminal, "w", encoding="utf-8", buffering=1)
        self.chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.controller, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def output(self) -> str:
        self.stream.flush()
        time.sleep(0.2)
        self.stream.close()
        self._reader.join(timeout=5)
        os.close(self.controller)
        return b"".join(self.chunks).decode(errors="replace")


def test_live_display_and_result_table_mask_a_registered_secret(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal.stream)
    monkeypatch.setattr(sys, "stderr", terminal.stream)
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "TERM"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    register_secret(SECRET)
    run = Run("provision", SimpleNamespace(args=[]), config_path=None, json_output=False, yes=False,
              verbose=False)

    with run.progress() as reporter:
        assert isinstance(reporter, RichReporter)   # the live display, since stderr is a terminal
        reporter.start("sql", f"sql server ({SECRET})")
        reporter.update("sql", f"connecting with password {SECRET}")
        time.sleep(0.4)                              # a few refreshes of the live display
        reporter.log(f"build step: echo {SECRET}")
        reporter.finish("sql", "failed", f"login failed for {SECRET}")
    data = {"resources": [{"resource": "sql server", "outcome": "failed", "seconds": 1.0,
                           "detail": f"login failed for {SECRET}"}]}
    run.succeed(data, lambda out: outcome_table(out, data, title="Provisioned"))

    shown = terminal.output()
    assert "\x1b[?25l" in shown                   # the live display ran (it hides the cursor)
    assert "connecting with password ***" in shown and "echo ***" in shown
    assert "login failed for ***" in shown
    assert SECRET not in shown


def test_a_secret_wrapped_in_a_narrow_table_cell_is_masked(monkeypatch):
    """Rich wraps a long cell across lines, which no filter on the written text could match:
    the console masks the string before rendering."""
    from rich.table import Table

    from mlflow_aca.reporting import console

    written = Terminal()
    register_secret(SECRET)
    monkeypatch.setattr(sys, "stdout", written.stream)
    out = console(width=24, force_terminal=True)
    table = Table("resource", "detail")
    table.add_row("sql", f"password {SECRET} rejected")
    out.print(table)
    shown = written.output()
    assert "***" in shown
    assert SECRET not in shown and SECRET[:12] not in shown
