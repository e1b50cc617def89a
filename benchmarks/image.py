"""Build and push times of the product image, measured here with the real engine and registry.

Runs the CLI (a subprocess, as users run it) against the Azure stand-in with a real token-auth
registry behind its login-server front, and prints, in one run:

- the cold build of the product template (`build --local --no-cache`; Microsoft's repository step
  on, served by the local stand-in of packages.microsoft.com; the local test base image) and the
  image size;
- a rebuild with nothing changed (`build --local`);
- the first push through the Entra-token path into an empty registry (`push`);
- a second push, which finds the image present (the manifest lookup over the registry's API);
- for comparison, what the engine itself takes to push the same image again ("Layer already
  exists" for every layer), the alternative way to detect an image already present.

    scripts/test-services.sh && python benchmarks/image.py [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import services  # noqa: E402 - after the path set-up
from tests.clirunner import clean_environ  # noqa: E402
from tests.standin import Standin  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold", action="store_true", help="do not rebuild from scratch (--no-cache)")
    args = parser.parse_args()
    client = services.require_docker()
    base = services.python_image(client)
    odbc = services.require_ms_repository().settings()
    work = Path(tempfile.mkdtemp(prefix="mlflow-aca-bench-"))
    docker_config = Path(tempfile.mkdtemp(prefix="mlflow-aca-bench-docker-"))
    registry_name = "acrbench" + uuid.uuid4().hex[:6]
    (work / "mlflow-aca.toml").write_text(
        'name = "mlflow"\nlocation = "westeurope"\n'
        + "".join(f'{key} = "{value}"\n' for key, value in odbc.items()) +
        f'base_image = "{base}"\nresource_group = "rg-bench"\nregistry_name = "{registry_name}"\npoll_interval = 0\n'
        # Its own repository: nothing else on a shared engine retags it between the two pushes.
        'image_repository = "mlflow-aca-bench/mlflow-server"\n')
    rows: list[tuple[str, float, str]] = []
    reference = ""
    with Standin() as standin:
        front = standin.registry_front()
        backend = services.start_token_registry(f"bench-{uuid.uuid4().hex[:6]}", realm=front["realm"],
                                                service=front["service"], issuer=front["issuer"],
                                                rootcertbundle=front["rootcertbundle"])
        try:
            standin.attach_registry(backend.host)
            env = clean_environ({**standin.env(), "DOCKER_CONFIG": str(docker_config)})

            def cli(*argv: str) -> tuple[float, dict]:
                started = time.monotonic()
                done = subprocess.run([sys.executable, "-m", "mlflow_aca", *argv, "--json"], cwd=work, env=env,
                                      capture_output=True, text=True, timeout=3600)
                elapsed = time.monotonic() - started
                document = json.loads(done.stdout)
                if not document["ok"]:
                    raise SystemExit(f"mlflow-aca {' '.join(argv)} failed: {document['error']}")
                return elapsed, document["data"]

            if not args.skip_cold:
                seconds, data = cli("build", "--local", "--no-cache")
                rows.append(("cold build (--no-cache)", seconds, f"{data['size_bytes'] / 1e6:.0f} MB, {data['image']}"))
            seconds, data = cli("build", "--local")
            rows.append(("rebuild, nothing changed", seconds, f"cached={data['cached']}"))
            if args.skip_cold:
                rows.append(("image size", 0.0, f"{data['size_bytes'] / 1e6:.0f} MB"))
            _create_registry(standin, registry_name)
            seconds, data = cli("push")
            reference, digest = data["image"], data["digest"]
            rows.append(("push into an empty registry", seconds, f"{data['layers_pushed']} layers, {digest[:19]}…"))
            seconds, data = cli("push")
            rows.append(("push again (manifest lookup)", seconds,
                         f"{data['outcome']}; {data['seconds']:.2f}s inside the CLI, the rest is start-up"))
            rows.append(("  engine re-push, for comparison", _engine_push(client, standin, front, reference),
                         "every layer 'already exists'"))
        finally:
            backend.stop()
            try:  # the registry is gone: drop its tag (the local one stays, with the cache)
                client.images.remove(reference, noprune=True)
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure'.ljust(width)}  seconds  detail")
    for name, seconds, detail in rows:
        print(f"{name.ljust(width)}  {seconds:7.2f}  {detail}")
    return 0


def _create_registry(standin: Standin, name: str) -> None:
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=standin.ca_path)
    token = standin.issue_token()
    for path, body in (("/resourcegroups/rg-bench?api-version=2025-04-01", {"location": "westeurope"}),
                       (f"/resourceGroups/rg-bench/providers/Microsoft.ContainerRegistry/registries/{name}"
                        "?api-version=2025-11-01", {"location": "westeurope", "sku": {"name": "Basic"}})):
        request = urllib.request.Request(f"{standin.url}/subscriptions/{standin.subscription_id}{path}", method="PUT",
                                         data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        urllib.request.urlopen(request, context=context, timeout=30).close()


def _engine_push(client, standin: Standin, front: dict, reference: str) -> float:
    """The engine pushing an image the registry has in full, with a freshly exchanged token."""
    import requests

    login = front["login_server"]
    refresh = requests.post(f"https://{login}/oauth2/exchange", verify=standin.ca_path, timeout=30, data={
        "grant_type": "access_token", "service": login, "tenant": standin.tenant_id,
        "access_token": standin.issue_token("https://containerregistry.azure.net")}).json()["refresh_token"]
    repository, _, tag = reference.rpartition(":")
    started = time.monotonic()
    chunks = list(client.api.push(repository, tag=tag, stream=True, decode=True,
                                  auth_config={"username": "00000000-0000-0000-0000-000000000000",
                                               "password": refresh}))
    elapsed = time.monotonic() - started
    errors = [c for c in chunks if "error" in c]
    if errors:
        raise SystemExit(f"engine push failed: {errors}")
    return elapsed


if __name__ == "__main__":
    sys.exit(main())
