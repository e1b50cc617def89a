"""Start-up time of the CLI against the cost of importing its two UI libraries.

Prints the median wall time of `mlflow-aca --help` and `mlflow-aca status --help` next to
`python -c "import typer, rich"`, measured in the same run with the runs interleaved, as ratios.
Target (issue 2): each ratio <= 1.6.

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    executable = shutil.which("mlflow-aca", path=str(Path(sys.executable).parent)) or shutil.which("mlflow-aca")
    if executable is None:
        print("mlflow-aca is not installed in this environment", file=sys.stderr)
        return 2
    cases = {
        "baseline: python -c 'import typer, rich'": [sys.executable, "-c", "import typer, rich"],
        "mlflow-aca --help": [executable, "--help"],
        "mlflow-aca status --help": [executable, "status", "--help"],
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(2):  # warm the page cache and .pyc files
        for argv in cases.values():
            subprocess.run(argv, capture_output=True, check=True)
    for _ in range(max(10, args.runs)):
        for name, argv in cases.items():
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            samples[name].append(time.perf_counter() - started)

    baseline = statistics.median(samples[next(iter(cases))])
    worst = 0.0
    print(f"{'command':<45} {'median':>9} {'ratio':>6}   (runs: {len(samples[next(iter(cases))])})")
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / baseline
        if name.startswith("mlflow-aca"):
            worst = max(worst, ratio)
        print(f"{name:<45} {median * 1000:8.1f}ms {ratio:5.2f}x")
    verdict = "within" if worst <= TARGET else "OVER"
    print(f"worst ratio {worst:.2f}x: {verdict} the {TARGET}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
