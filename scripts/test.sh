#!/usr/bin/env bash
# The project's one test command (README): installs the project into .venv, sets up and starts
# every service the tests use (Docker engine, registry, Azurite, PostgreSQL), then runs pytest.
# Arguments are passed to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

if [ -x scripts/test-services.sh ]; then
  services_env=$(scripts/test-services.sh)
  eval "$services_env"
fi

# pytest exits 5 when no tests ran; with `set -e` that fails the run, as it should.
exec .venv/bin/python -m pytest "$@"
