"""Progress reporting: one small interface, a Rich implementation for people at a terminal and a
silent one for `--json`, pipes and tests. Domain code reports through it and never prints.

Everything shown to people goes through `redaction.redact`: the consoles `console()` makes
redact each string they are given (so a secret is masked before Rich can wrap it across lines or
split it with styles) and again each chunk they write (text rendered from something other than
a string, a secret registered after the text was handed over). The live display's labels, status
texts and log lines are redacted before they reach Rich as well.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from mlflow_aca.redaction import redact


@dataclass
class StepRecord:
    key: str
    label: str
    started: float
    outcome: str | None = None  # created / updated / ok / deleted / failed / skipped ...
    detail: str = ""
    finished: float | None = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class Reporter(Protocol):
    """How long-running work tells the user what it is doing.

    `start` opens a step, `update` changes its status text, `finish` closes it with an outcome
    word and an optional detail; `log` carries one line of streamed output (a build log).
    Implementations must be safe to call from several threads at once.
    """

    def start(self, key: str, label: str) -> None: ...

    def update(self, key: str, message: str) -> None: ...

    def finish(self, key: str, outcome: str, detail: str = "") -> None: ...

    def log(self, line: str) -> None: ...

    def close(self) -> None: ...

    @property
    def steps(self) -> list[StepRecord]: ...


class SilentReporter:
    """Records steps without displaying anything; what `--json` summaries are made from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[str, StepRecord] = {}
        self.lines: list[str] = []

    def start(self, key: str, label: str) -> None:
        with self._lock:
            self._steps[key] = StepRecord(key, label, time.monotonic())

    def update(self, key: str, message: str) -> None:
        pass

    def finish(self, key: str, outcome: str, detail: str = "") -> None:
        with self._lock:
            step = self._steps.setdefault(key, StepRecord(key, key, time.monotonic()))
            step.outcome, step.detail, step.finished = outcome, detail, time.monotonic()

    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def close(self) -> None:
        pass

    @property
    def steps(self) -> list[StepRecord]:
        with self._lock:
            return list(self._steps.values())


class PlainReporter(SilentReporter):
    """One line per event on a stream: progress a CI log can keep, with no live display."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self._started = time.monotonic()

    def start(self, key: str, label: str) -> None:
        super().start(key, label)
        self._write(f"{label}: started")

    def finish(self, key: str, outcome: str, detail: str = "") -> None:
        super().finish(key, outcome, detail)
        step = next(s for s in self.steps if s.key == key)
        self._write(f"{step.label}: {outcome} in {step.seconds:.1f}s" + (f" ({detail})" if detail else ""))

    def log(self, line: str) -> None:
        super().log(line)
        self._write(f"  {line}")

    def _write(self, text: str) -> None:
        with self._lock:
            self._stream.write(f"[{time.monotonic() - self._started:6.1f}s] {redact(text)}\n")
            self._stream.flush()


class RedactingStream:
    """A text stream that masks registered secrets in everything written to it."""

    def __init__(self, stream: Any) -> None:
        # While a live display runs, Rich swaps sys.stderr/stdout for a proxy that prints through
        # the console; writing to that proxy from the console would loop (rich/console.py `file`
        # unwraps `rich_proxied_file` for the same reason).
        self._stream = getattr(stream, "rich_proxied_file", stream)

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", "utf-8") or "utf-8"


def console(*, stderr: bool = False, **options: Any) -> Any:
    """A Rich console on stdout or stderr whose output is redacted (see the module docstring)."""
    from rich.console import Console

    class RedactingConsole(Console):
        # render_str is Rich's documented conversion of every str given to print (and of str
        # table cells, rich/table.py): redact before markup, wrapping and styles apply.
        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(redact(text), **kwargs)

    stream = sys.stderr if stderr else sys.stdout
    return RedactingConsole(file=RedactingStream(stream), **options)


class RichReporter(SilentReporter):
    """A spinner and elapsed time per running step on a terminal."""

    def __init__(self, console: Any) -> None:
        super().__init__()
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    def start(self, key: str, label: str) -> None:
        super().start(key, label)
        with self._lock:
            self._tasks[key] = self._progress.add_task(_escape(redact(label)), total=None)

    def update(self, key: str, message: str) -> None:
        with self._lock:
            task = self._tasks.get(key)
            label = self._steps[key].label if key in self._steps else key
        if task is not None:
            self._progress.update(task, description=f"{_escape(redact(label))} "
                                                    f"[dim]{_escape(redact(message))}[/]")

    def finish(self, key: str, outcome: str, detail: str = "") -> None:
        super().finish(key, outcome, detail)
        with self._lock:
            task = self._tasks.get(key)
        if task is not None:
            self._progress.stop_task(task)
            self._progress.update(task, visible=False)

    def log(self, line: str) -> None:
        super().log(line)
        self._progress.console.print(_escape(redact(line)), style="dim", highlight=False)

    def close(self) -> None:
        # Transient: the live display disappears; the command prints the summary itself.
        self._progress.stop()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)

