"""What `MLFLOW_TRACKING_AUTH=mlflow-aca` costs an MLflow client, measured in one run.

Prints medians and ratios, each case a fresh interpreter, the cases interleaved:
- `import mlflow` with the plugin's entry point installed against the same environment with
  only that entry point hidden (target: 1.00x; MLflow 3.17.2 imports its request-auth registry,
  and so the plugin, only on the first authenticated request);
- `import mlflow` + MLflow's request-auth registry (what the first request with
  MLFLOW_TRACKING_AUTH set imports), with against without the plugin (target <= 1.05x: the
  plugin module must not import azure.identity);
- the first request (registry, DefaultAzureCredential, a token from the identity endpoint) and
  the mean of the next 50 requests (cached token), each against the same requests without auth,
  to a local HTTP server.

    python benchmarks/client_auth.py [--runs 10]

Run from the repository root with the project installed (`pip install -e .` registers the
entry point); it starts the test stand-in (tests/standin) as the identity endpoint.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.standin import standin_process  # noqa: E402

# Hides only the plugin's entry point from importlib.metadata, which MLflow's registry reads
# (mlflow/utils/plugins.py): "without the plugin" in the very same environment.
HIDE_PLUGIN = """
import importlib.metadata as _md
_entry_points = _md.entry_points
def _without_plugin(**params):
    found = _entry_points(**params)
    if params.get("group") == "mlflow.request_auth_provider":
        return _md.EntryPoints(e for e in found if e.name != "mlflow-aca")
    return found
_md.entry_points = _without_plugin
"""
IMPORT = """
import time, json
t0 = time.perf_counter()
import mlflow
t1 = time.perf_counter()
from mlflow.tracking.request_auth import registry
t2 = time.perf_counter()
names = [p.get_name() for p in registry._request_auth_provider_registry]
import sys
print(json.dumps({"mlflow": t1 - t0, "registry": t2 - t0, "names": names,
                  "azure": sorted(m for m in sys.modules if m.startswith("azure"))}))
"""
REQUESTS = """
import time, json, os
import mlflow
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request
url = os.environ["BENCH_URL"]
t0 = time.perf_counter()
assert http_request(get_default_host_creds(url), "/api/2.0/mlflow/experiments/search", "GET").status_code == 200
t1 = time.perf_counter()
for _ in range(50):
    http_request(get_default_host_creds(url), "/api/2.0/mlflow/experiments/search", "GET")
t2 = time.perf_counter()
print(json.dumps({"first": t1 - t0, "next": (t2 - t1) / 50}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with standin_process("--no-proxy", cwd=str(ROOT)) as (standin, standin_env), answering_server() as url:
        app_id = standin.register_application("bench", identifier_uris=["api://{appId}"])["appId"]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MLFLOW_"))}
        base.update(standin_env, BENCH_URL=url, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
        signed = {**base, "MLFLOW_TRACKING_AUTH": "mlflow-aca", "MLFLOW_ACA_AUTH_SCOPE": f"api://{app_id}/.default"}
        cases = {
            "import: without plugin": (HIDE_PLUGIN + IMPORT, base),
            "import: with plugin": (IMPORT, base),
            "requests: no auth": (REQUESTS, base),
            "requests: mlflow-aca": (REQUESTS, signed),
        }
        samples: dict[str, list[dict]] = {name: [] for name in cases}
        run(*cases["import: with plugin"])  # warm .pyc files and the page cache
        for _ in range(max(3, args.runs)):
            for name, (code, env) in cases.items():
                samples[name].append(run(code, env))

    assert "mlflow-aca" in samples["import: with plugin"][0]["names"], "entry point not installed (pip install -e .)"
    assert "mlflow-aca" not in samples["import: without plugin"][0]["names"]
    assert samples["import: with plugin"][0]["azure"] == [], "loading the plugin imported an Azure SDK"

    def median(name: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[name])

    rows = [
        ("import mlflow", median("import: without plugin", "mlflow"), median("import: with plugin", "mlflow")),
        ("import mlflow + request-auth registry", median("import: without plugin", "registry"),
         median("import: with plugin", "registry")),
        ("request-auth registry alone (after mlflow)",
         median("import: without plugin", "registry") - median("import: without plugin", "mlflow"),
         median("import: with plugin", "registry") - median("import: with plugin", "mlflow")),
        ("first request", median("requests: no auth", "first"), median("requests: mlflow-aca", "first")),
        ("each next request (mean of 50)", median("requests: no auth", "next"), median("requests: mlflow-aca", "next")),
    ]
    print(f"{'measure':<40} {'without':>10} {'with':>10} {'ratio':>7}   (runs: {len(samples['import: with plugin'])})")
    for label, without, with_plugin in rows:
        print(f"{label:<40} {without * 1000:8.1f}ms {with_plugin * 1000:8.1f}ms {with_plugin / without:6.2f}x")
    extra = rows[3][2] - rows[3][1]
    print(f"first-request overhead of signing in: {extra * 1000:.0f} ms "
          "(azure.identity import, DefaultAzureCredential, one token from the identity endpoint)")
    return 0


def run(code: str, env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def answering_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm on, the client's delayed
        # ACK would add ~40 ms to every request and hide what is measured.
        disable_nagle_algorithm = True

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
