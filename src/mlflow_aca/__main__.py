"""`python -m mlflow_aca` and the `mlflow-aca` script: the CLI, with Ctrl-C during start-up handled.

Importing the CLI (Typer, Click, Rich, the commands) takes a noticeable part of a second; a
Ctrl-C then arrives as KeyboardInterrupt inside an import, before any command's error boundary
exists, and Python would print a traceback. Here it ends the process as an interrupt does later on:
a short message and exit code 130.
"""

import sys

from mlflow_aca.errors import ExitCode


def main() -> None:
    try:
        from mlflow_aca.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(ExitCode.INTERRUPTED)
    run()


if __name__ == "__main__":
    main()
