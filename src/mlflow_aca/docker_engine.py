"""The Docker engine, through the docker SDK: the only module that imports `docker`.

It hands the rest of the tool plain values (the engine's JSON stream chunks, image facts) and
turns the SDK's exceptions into the tool's errors. The engine is found the way the docker CLI
finds it: DOCKER_HOST (and DOCKER_TLS_VERIFY / DOCKER_CERT_PATH), else the local socket.
Credentials are passed per request (`auth_config`); nothing is ever written to the Docker config.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_aca.errors import OperationError, first_line

# Version negotiation and ping: a dead socket fails at once, a wedged engine within this.
CONNECT_TIMEOUT = 10
# Streams: a build step may print nothing for minutes (pip resolving, a slow mirror); the
# timeout is per read, not for the whole build.
STREAM_TIMEOUT = 3600


class EngineUnavailable(OperationError):
    default_code = "DockerUnavailable"


@dataclass(frozen=True)
class LocalImage:
    id: str
    size: int
    repo_digests: tuple[str, ...]  # "<repository>@sha256:..." for every registry it was pushed to


class Engine:
    """A connected engine. Build and push return the engine's stream: every chunk must be checked
    for "error", because the SDK does not raise for failures reported inside the stream."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def connect(cls) -> Engine:
        import docker

        try:
            client = docker.from_env(timeout=CONNECT_TIMEOUT)
            client.ping()
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(
                f"No Docker engine answers at {_engine_address()}: {first_line(exc)}",
                hint="Start Docker (or point DOCKER_HOST at an engine), or build in Azure with ACR "
                "Tasks: `mlflow-aca build --remote`.",
            ) from None
        client.api.timeout = STREAM_TIMEOUT
        return cls(client)

    def build(self, context_dir: Path, tag: str, *, no_cache: bool, pull: bool,
              build_args: dict[str, str]) -> Iterator[dict[str, Any]]:
        with _translated(f"build {tag}"):
            # The legacy builder's JSON stream (docker-py speaks no BuildKit session): the
            # template uses no BuildKit-only syntax.
            yield from self._client.api.build(
                path=str(context_dir), tag=tag, rm=True, forcerm=True, pull=pull, nocache=no_cache,
                buildargs=build_args or None, decode=True,
            )

    def push(self, repository: str, tag: str, auth_config: dict[str, str]) -> Iterator[dict[str, Any]]:
        with _translated(f"push {repository}:{tag}"):
            yield from self._client.api.push(repository, tag=tag, stream=True, decode=True,
                                             auth_config=auth_config)

    def tag(self, source: str, repository: str, tag: str) -> None:
        with _translated(f"tag {source} as {repository}:{tag}"):
            self._client.api.tag(source, repository, tag=tag)

    def image(self, reference: str) -> LocalImage | None:
        """The image's facts, or None when the engine does not have it."""
        import docker

        try:
            with _translated(f"inspect {reference}"):
                attrs = self._client.api.inspect_image(reference)
        except OperationError as error:
            if isinstance(error.__cause__, docker.errors.ImageNotFound):
                return None
            raise
        return LocalImage(id=attrs["Id"], size=int(attrs.get("Size") or 0),
                          repo_digests=tuple(attrs.get("RepoDigests") or ()))

    def close(self) -> None:
        self._client.close()


def available() -> bool:
    """True when an engine answers a ping."""
    try:
        Engine.connect().close()
    except EngineUnavailable:
        return False
    return True


def pack_context(context_dir: Path) -> bytes:
    """The build context as a tar.gz, honouring its .dockerignore exactly as `docker build`
    (and docker-py's own build) does; for ACR Tasks, which receives the context as an upload."""
    from docker.utils.build import tar

    ignore = context_dir / ".dockerignore"
    patterns = []
    if ignore.is_file():
        patterns = [line.strip() for line in ignore.read_text().splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    with tar(str(context_dir), exclude=patterns, gzip=True) as archive:
        return archive.read()


@contextmanager
def _translated(action: str) -> Iterator[None]:
    import docker
    import requests

    try:
        yield
    except docker.errors.APIError as exc:
        raise OperationError(f"Docker could not {action}: {exc.explanation or exc}",
                             code="DockerError") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        # The engine went away mid-stream (restarted, socket closed) or timed out.
        raise OperationError(f"Lost the Docker engine at {_engine_address()} while trying to {action}: "
                             f"{first_line(exc)}", code="DockerUnavailable",
                             hint="Check that the engine is running, then rerun.") from exc


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
