#!/usr/bin/env python3
"""Write the server image's dependency locks: templates/constraints/mlflow-<version>-py<python>.txt.

    python scripts/lock-image-deps.py [--mlflow-version 3.17.2] [--python 3.11 3.12 3.13]

Each lock pins everything `mlflow[azure]==<version>` and `pyodbc==<PYODBC_VERSION>` resolve to
on Linux (manylinux_2_28, the glibc of Debian 12 and newer) for one Python minor, with the
sha256 of every file PyPI has for each pinned version (`--generate-hashes`), so one lock serves
x86_64 and aarch64: the script resolves both and stops if they differ. Wheels only
(`--only-binary :all:`), as the image installs them. The defaults are the package's own
(Settings' mlflow_version, template.PYODBC_VERSION). Run it after changing either, commit the
files, and rebuild: the lock is part of the image's content tag.

The resolver is uv, at a pinned version, installed into a temporary virtual environment.
Needs PyPI (directly, or through PIP_INDEX_URL/UV_INDEX_URL).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

UV_VERSION = "0.13.8"
ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28")
DEFAULT_PYTHONS = ("3.11", "3.12", "3.13")


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from mlflow_aca.config import Settings
    from mlflow_aca.supply_chain import LOCK_DIR, lock_name
    from mlflow_aca.template import PYODBC_VERSION

    default_version = Settings.model_fields["mlflow_version"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlflow-version", default=default_version)
    parser.add_argument("--python", nargs="+", default=list(DEFAULT_PYTHONS))
    args = parser.parse_args()

    requirements = f"mlflow[azure]=={args.mlflow_version}\npyodbc=={PYODBC_VERSION}\n"
    with tempfile.TemporaryDirectory(prefix="lock-image-deps-") as work:
        uv = install_uv(Path(work))
        (Path(work) / "requirements.in").write_text(requirements)
        for python in args.python:
            outputs = [compile_lock(uv, Path(work), python, platform) for platform in PLATFORMS]
            if len(set(outputs)) != 1:
                print(f"Python {python}: the x86_64 and aarch64 resolutions differ; one lock cannot serve both",
                      file=sys.stderr)
                return 1
            target = ROOT / "templates" / LOCK_DIR / lock_name(args.mlflow_version, python)
            target.parent.mkdir(parents=True, exist_ok=True)
            header = (f"# The server image's Python packages for MLflow {args.mlflow_version} on Python {python}\n"
                      f"# (Linux x86_64 and aarch64): mlflow[azure]=={args.mlflow_version} and "
                      f"pyodbc=={PYODBC_VERSION} with every dependency,\n"
                      "# each with the sha256 of all its files on PyPI. Written by scripts/lock-image-deps.py "
                      f"(uv {UV_VERSION}); do not edit.\n")
            target.write_text(header + outputs[0])
            count = sum(1 for line in outputs[0].splitlines() if line[:1].isalnum())
            print(f"wrote {target.relative_to(ROOT)}: {count} packages")
    return 0


def install_uv(work: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    subprocess.run([str(work / "venv" / "bin" / "pip"), "install", "--quiet", f"uv=={UV_VERSION}"], check=True)
    return work / "venv" / "bin" / "uv"


def compile_lock(uv: Path, work: Path, python: str, platform: str) -> str:
    output = work / f"lock-{python}-{platform}.txt"
    # Run in `work` with a relative input, so the "# via -r requirements.in" notes do not name a
    # temporary folder.
    command = [str(uv), "pip", "compile", "requirements.in", "--output-file", str(output),
               "--generate-hashes", "--only-binary", ":all:", "--no-header", "--quiet",
               "--python-version", python, "--python-platform", platform]
    # uv reads the system's certificate store only when asked; a TLS-intercepting proxy's CA is there.
    env = {**os.environ, "UV_NATIVE_TLS": os.environ.get("UV_NATIVE_TLS", "1")}
    subprocess.run(command, check=True, env=env, cwd=work)
    return output.read_text()


if __name__ == "__main__":
    sys.exit(main())
