"""A dependency graph of steps and its concurrent executor.

Provisioning is not a script: the identity and the workspace do not wait for each other, the
environment waits only for the workspace, the app for the environment, the identity's roles and
the image. Steps run as soon as their dependencies are done, at most `concurrency` at a time.
A failed step skips what depends on it and lets independent work finish, so a rerun has less
to do. Worker threads are daemons: Ctrl-C returns control at once instead of waiting for
Azure's long-running operations (which Azure finishes on its own; a rerun converges).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow_aca.errors import MlflowAcaError, OperationError


@dataclass
class StepResult:
    outcome: str  # created / updated / ok / deleted / kept / absent / skipped / failed ...
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    run: Callable[[], StepResult]
    deps: tuple[str, ...] = ()


class GraphFailed(OperationError):
    """One or more steps failed; carries every step's result for the summary."""

    def __init__(self, failures: dict[str, MlflowAcaError], results: dict[str, StepResult]):
        first_key, first = next(iter(failures.items()))
        others = len(failures) - 1
        message = f"{first_key}: {first.message}"
        if others:
            message += f" (and {others} more failed step{'s' if others > 1 else ''}: " + \
                ", ".join(list(failures)[1:]) + ")"
        summary = {"resources": [{"key": key, "outcome": result.outcome, "detail": result.detail,
                                  "seconds": round(result.seconds, 2)}
                                 for key, result in results.items()]}
        super().__init__(message, code=first.code, hint=first.hint, data=summary)
        self.exit_code = first.exit_code
        self.failures = failures
        self.results = results


def check_graph(steps: Iterable[Step]) -> list[Step]:
    """Validate keys, dependencies and acyclicity; return the steps in a topological order."""
    by_key: dict[str, Step] = {}
    for step in steps:
        if step.key in by_key:
            raise ValueError(f"duplicate step {step.key}")
        by_key[step.key] = step
    for step in by_key.values():
        missing = [d for d in step.deps if d not in by_key]
        if missing:
            raise ValueError(f"step {step.key} depends on unknown {missing}")
    ordered: list[Step] = []
    state: dict[str, int] = {}

    def visit(key: str, path: tuple[str, ...]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise ValueError(f"dependency cycle: {' -> '.join(path + (key,))}")
        state[key] = 1
        for dep in by_key[key].deps:
            visit(dep, path + (key,))
        state[key] = 2
        ordered.append(by_key[key])

    for key in by_key:
        visit(key, ())
    return ordered


def critical_path(steps: Iterable[Step], seconds: Mapping[str, float]) -> tuple[float, list[str]]:
    """The longest chain of step durations through the graph, and the steps on it."""
    best: dict[str, tuple[float, list[str]]] = {}
    for step in check_graph(steps):
        before = max((best[d] for d in step.deps), default=(0.0, []), key=lambda item: item[0])
        best[step.key] = (before[0] + seconds.get(step.key, 0.0), before[1] + [step.key])
    return max(best.values(), default=(0.0, []), key=lambda item: item[0])


def run_graph(steps: Iterable[Step], *, reporter: Any, concurrency: int = 4) -> dict[str, StepResult]:
    """Run every step once its dependencies succeeded. Raises GraphFailed if any step failed."""
    ordered = check_graph(steps)
    pending = {step.key: step for step in ordered}
    results: dict[str, StepResult] = {}
    failures: dict[str, MlflowAcaError] = {}
    finished: queue.Queue[tuple[str, StepResult | BaseException]] = queue.Queue()
    running: set[str] = set()

    def worker(step: Step) -> None:
        started = time.monotonic()
        try:
            result = step.run()
            result.seconds = time.monotonic() - started
            finished.put((step.key, result))
        except BaseException as exc:  # noqa: BLE001 - handed to the coordinating thread
            finished.put((step.key, exc))

    def blocked(step: Step) -> bool:
        return any(dep in failures or results.get(dep, StepResult("")).outcome == "skipped"
                   for dep in step.deps)

    while pending or running:
        for key in list(pending):
            step = pending[key]
            if blocked(step):
                del pending[key]
                reporter.start(key, step.label)
                results[key] = StepResult("skipped", "a dependency failed")
                reporter.finish(key, "skipped", "a dependency failed")
            elif len(running) < concurrency and all(d in results for d in step.deps):
                del pending[key]
                running.add(key)
                reporter.start(key, step.label)
                threading.Thread(target=worker, args=(step,), name=f"step-{key}", daemon=True).start()
        if not running:
            continue
        key, outcome = _next(finished)
        running.discard(key)
        if isinstance(outcome, StepResult):
            results[key] = outcome
            reporter.finish(key, outcome.outcome, outcome.detail)
        elif isinstance(outcome, MlflowAcaError):
            failures[key] = outcome
            results[key] = StepResult("failed", outcome.message)
            reporter.finish(key, "failed", f"{outcome.code}: {outcome.message}")
        else:
            raise outcome  # a bug or an interrupt inside a step: not an expected failure
    if failures:
        raise GraphFailed(failures, results) from next(iter(failures.values()))
    return results


def _next(finished: queue.Queue[Any]) -> Any:
    # A timeout keeps the main thread responsive to Ctrl-C while steps run.
    while True:
        try:
            return finished.get(timeout=0.2)
        except queue.Empty:
            continue
