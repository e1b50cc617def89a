import threading
import time

import pytest

from mlflow_aca.errors import OperationError
from mlflow_aca.graph import GraphFailed, Step, StepResult, check_graph, critical_path, run_graph
from mlflow_aca.reporting import SilentReporter


def recorder():
    log: list[tuple[str, str]] = []
    lock = threading.Lock()

    def step(key, deps=(), seconds=0.0, fail=None):
        def run():
            with lock:
                log.append(("start", key))
            time.sleep(seconds)
            if fail:
                raise OperationError(f"{key} broke", code=fail)
            with lock:
                log.append(("end", key))
            return StepResult("created")
        return Step(key, f"label {key}", run, tuple(deps))

    return log, step


def test_dependencies_finish_before_dependents_start():
    log, step = recorder()
    steps = [step("app", ["env", "identity"]), step("env", ["rg"]), step("identity", ["rg"]), step("rg")]
    results = run_graph(steps, reporter=SilentReporter(), concurrency=4)
    assert set(results) == {"rg", "env", "identity", "app"}
    order = [key for event, key in log if event == "end"]
    assert order[0] == "rg" and order[-1] == "app"
    assert log.index(("start", "app")) > log.index(("end", "env"))


def test_independent_steps_overlap():
    log, step = recorder()
    started = time.monotonic()
    run_graph([step(k, seconds=0.3) for k in "abcd"], reporter=SilentReporter(), concurrency=4)
    assert time.monotonic() - started < 1.0  # four 0.3 s steps at once, not 1.2 s in a row
    starts = [i for i, (event, _k) in enumerate(log) if event == "start"]
    assert starts == [0, 1, 2, 3]  # all started before any ended


def test_concurrency_is_bounded():
    running, peak = [0], [0]
    lock = threading.Lock()

    def run():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return StepResult("ok")

    run_graph([Step(str(i), str(i), run) for i in range(8)], reporter=SilentReporter(), concurrency=3)
    assert peak[0] == 3


def test_failure_skips_dependents_and_lets_independent_work_finish():
    log, step = recorder()
    steps = [step("rg"), step("sql", ["rg"], fail="ServerAlreadyExists"), step("db", ["sql"]),
             step("app", ["db"]), step("logs", ["rg"], seconds=0.1)]
    reporter = SilentReporter()
    with pytest.raises(GraphFailed) as raised:
        run_graph(steps, reporter=reporter, concurrency=4)
    error = raised.value
    assert error.code == "ServerAlreadyExists" and "sql broke" in error.message
    assert error.results["db"].outcome == "skipped" and error.results["app"].outcome == "skipped"
    assert error.results["logs"].outcome == "created"
    assert ("start", "db") not in log
    outcomes = {s.key: s.outcome for s in reporter.steps}
    assert outcomes["sql"] == "failed" and outcomes["app"] == "skipped"


def test_unexpected_exceptions_are_not_swallowed():
    def broken():
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        run_graph([Step("x", "x", broken)], reporter=SilentReporter())


def test_graph_validation():
    noop = lambda: StepResult("ok")  # noqa: E731
    with pytest.raises(ValueError, match="cycle"):
        check_graph([Step("a", "a", noop, ("b",)), Step("b", "b", noop, ("a",))])
    with pytest.raises(ValueError, match="unknown"):
        check_graph([Step("a", "a", noop, ("nope",))])
    with pytest.raises(ValueError, match="duplicate"):
        check_graph([Step("a", "a", noop), Step("a", "a", noop)])


def test_critical_path():
    noop = lambda: StepResult("ok")  # noqa: E731
    steps = [Step("rg", "", noop), Step("ws", "", noop, ("rg",)), Step("env", "", noop, ("ws",)),
             Step("sql", "", noop, ("rg",)), Step("db", "", noop, ("sql",)),
             Step("app", "", noop, ("env", "db"))]
    seconds = {"rg": 3, "ws": 25, "env": 450, "sql": 75, "db": 90, "app": 75}
    total, path = critical_path(steps, seconds)
    assert total == 3 + 25 + 450 + 75
    assert path == ["rg", "ws", "env", "app"]
