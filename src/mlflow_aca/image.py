"""The server image: build it (with the local Docker engine, or in Azure with ACR Tasks), push it
to the deployment's registry, and the steps `up` runs for it next to provisioning.

The image is named after its content (template.py): the same configuration always gives the
same tag, so a rebuild is a cache hit and a push of what the registry already holds is a no-op.
Progress goes through the Reporter: the build log line by line (`log`), the current step and
per-layer push progress as the step's status (`update`). Nothing here imports the docker SDK or
an Azure SDK: docker_engine.py and the azure/ adapters do.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlflow_aca.errors import MlflowAcaError, OperationError, UsageError
from mlflow_aca.template import RenderedImage, render_image

if TYPE_CHECKING:
    from mlflow_aca.config import Settings
    from mlflow_aca.graph import Step, StepResult
    from mlflow_aca.resources.base import Context

BUILD_KEY = "image_build"
PUSH_KEY = "image_push"
REMOTE_KEY = "image"  # a remote build pushes too: one step
DOCKERFILE = "Dockerfile"
# The image installs everything from package indexes except the files mlflow-aca writes beside
# the Dockerfile (template.context_files): keep the context to those, whatever else ends up in
# the folder.
DOCKERIGNORE_HEADER = "# Written by mlflow-aca: the build needs nothing but these files.\n*\n!Dockerfile\n"
LOG_TAIL = 8  # lines of output quoted in a failure
# What the template's self-check prints when the image could not reach Azure SQL (Dockerfile.j2).
CHECK_PREFIX = "mlflow-aca image check: "
# The classic builder wraps a step's stderr in colour codes (ESC[91m ... ESC[0m), so a line
# printed after a warning (gpg's "keybox created", observed) starts with ESC[0m.
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_T = TypeVar("_T")


@dataclass(frozen=True)
class BuildOptions:
    no_cache: bool = False
    pull: bool = False  # never by default: base images may exist only locally
    build_args: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_flags(cls, *, no_cache: bool = False, pull: bool = False,
                   build_args: Iterable[str] = (), environ: dict[str, str] | None = None) -> BuildOptions:
        """`KEY=VALUE`, or `KEY` alone to take the value from the environment (as `docker build`
        does, which keeps e.g. a proxy password off the command line)."""
        environ = os.environ if environ is None else environ
        parsed: dict[str, str] = {}
        for item in build_args:
            name, has_value, value = item.partition("=")
            if not name or not name.replace("_", "").isalnum():
                raise UsageError(f"--build-arg {item!r} is not KEY=VALUE.",
                                 hint="Pass --build-arg NAME=value, or --build-arg NAME to use $NAME.")
            if not has_value:
                if name not in environ:
                    raise UsageError(f"--build-arg {name} names no environment variable.",
                                     hint=f"Set {name} in the environment or pass --build-arg {name}=value.")
                value = environ[name]
            parsed[name] = value
        return cls(no_cache=no_cache, pull=pull, build_args=parsed)


@dataclass
class BuildResult:
    mode: str  # "local" or "remote"
    image: str  # local reference, or the registry reference a remote build pushed
    tag: str
    seconds: float
    image_id: str | None = None
    size_bytes: int | None = None
    cached: bool = False
    run_id: str | None = None
    status: str | None = None
    digest: str | None = None

    @property
    def outcome(self) -> str:
        return "built"

    @property
    def detail(self) -> str:
        if self.mode == "remote":
            return f"run {self.run_id} {self.status}, {self.digest}"
        size = f"{self.size_bytes / 1e6:.0f} MB" if self.size_bytes else ""
        return ", ".join(part for part in (size, "all steps cached" if self.cached else "") if part)

    def as_data(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass
class PushResult:
    image: str  # <login server>/<repository>:<tag>
    digest: str
    outcome: str  # "pushed" or "present"
    seconds: float
    layers_pushed: int = 0
    layers_present: int = 0

    @property
    def detail(self) -> str:
        if self.outcome == "present":
            return f"already in the registry ({self.digest})"
        return f"{self.digest}; {self.layers_pushed} layers pushed, {self.layers_present} already there"

    def as_data(self) -> dict[str, Any]:
        return dict(self.__dict__)


class TasksNotAllowed(OperationError):
    """The subscription may not run ACR Tasks (free trials): a local build is the way out."""

    default_code = "TasksOperationsNotAllowed"

    def __init__(self, message: str, *, local_possible: bool) -> None:
        hint = ("A Docker engine answers here: build locally instead (rerun with --local)." if local_possible else
                "No Docker engine answers here either: start Docker and rerun with --local, or build the "
                "Dockerfile elsewhere (`mlflow-aca build --dry-run` prints it).")
        super().__init__(message, hint=hint)
        self.local_possible = local_possible


# --- choosing -------------------------------------------------------------------------------
def engine_available() -> bool:
    from mlflow_aca import docker_engine

    return docker_engine.available()


def choose_remote(remote: bool | None) -> bool:
    """--remote / --local as given; by default local when an engine answers, else remote."""
    return (not engine_available()) if remote is None else remote


# --- local build ----------------------------------------------------------------------------
@contextmanager
def build_context(rendered: RenderedImage) -> Iterator[Path]:
    """A temporary build context: the rendered Dockerfile, the files it copies in and a
    .dockerignore that admits nothing else."""
    with tempfile.TemporaryDirectory(prefix="mlflow-aca-build-") as directory:
        root = Path(directory)
        (root / DOCKERFILE).write_text(rendered.dockerfile, encoding="utf-8")
        for name, data in rendered.files.items():
            (root / name).write_bytes(data)
        (root / ".dockerignore").write_text(dockerignore(rendered), encoding="utf-8")
        yield root


def dockerignore(rendered: RenderedImage) -> str:
    return DOCKERIGNORE_HEADER + "".join(f"!{name}\n" for name in sorted(rendered.files))


def build_local(settings: Settings, reporter: Any, options: BuildOptions, *,
                key: str = BUILD_KEY) -> BuildResult:
    """Build with the local engine, streaming its output. Raises OperationError with Docker's own
    message when a step fails, EngineUnavailable when no engine answers."""
    from mlflow_aca.docker_engine import Engine

    rendered = render_image(settings)
    engine = Engine.connect()
    started = time.monotonic()
    try:
        log = BuildLog(reporter, key)
        with build_context(rendered) as context:
            for chunk in engine.build(context, rendered.reference, no_cache=options.no_cache,
                                      pull=options.pull, build_args=options.build_args):
                log.feed(chunk)
        log.close()
        if log.error is not None:
            raise OperationError(
                f"Docker could not build {rendered.reference}: {log.failure}" + log.quote_tail(),
                code="BuildFailed",
                hint="Fix what the failing step reports (e.g. an extra package that does not exist), then "
                "rerun; steps that succeeded come from the cache.",
            )
        facts = engine.image(log.image_id or rendered.reference)
    finally:
        engine.close()
    return BuildResult(mode="local", image=rendered.reference, tag=rendered.tag,
                       seconds=_since(started),
                       image_id=facts.id if facts else log.image_id,
                       size_bytes=facts.size if facts else None, cached=log.all_cached)


def stream_error(chunk: dict[str, Any]) -> str:
    """The failure an engine stream reports inside a chunk (the SDK raises nothing for it)."""
    detail = chunk.get("errorDetail") or {}
    return str(detail.get("message") or chunk["error"]).strip()


class BuildLog:
    """Turns the engine's (or a run log's) text into lines for the reporter, and remembers what
    the summary and a failure message need."""

    def __init__(self, reporter: Any, key: str) -> None:
        self.reporter = reporter
        self.key = key
        self.tail: list[str] = []
        self.error: str | None = None
        self.image_id: str | None = None
        self.steps = 0
        self.cache_hits = 0
        self.check_failure: str | None = None  # the image self-check's own words, if it failed
        self._partial = ""

    def feed(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            self.error = stream_error(chunk)
            return
        if "stream" in chunk:
            self.text(str(chunk["stream"]))
        elif "status" in chunk:  # pulling the base image (--pull)
            self.reporter.update(self.key, " ".join(str(chunk.get(k, "")) for k in ("id", "status")).strip())
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])

    def text(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self.line(line)

    def line(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        self.reporter.log(line)
        plain = _COLOUR.sub("", line)
        if plain.startswith(CHECK_PREFIX):
            self.check_failure = "the image failed its self-check: " + plain[len(CHECK_PREFIX):]
        if not line.startswith((" ---> ", "Removing intermediate container")):  # bookkeeping, not news
            self.tail = (self.tail + [line])[-LOG_TAIL:]
        if line.startswith("Step "):
            self.steps += 1
            self.reporter.update(self.key, line)
        elif line.strip() == "---> Using cache":
            self.cache_hits += 1

    def close(self) -> None:
        if self._partial:
            self.line(self._partial)
            self._partial = ""

    @property
    def all_cached(self) -> bool:
        # Every step after FROM reports "Using cache" when nothing had to run.
        return self.steps > 1 and self.cache_hits >= self.steps - 1

    @property
    def failure(self) -> str | None:
        """What went wrong, in one line: the self-check's words rather than Docker's (which
        repeat the whole failing RUN command)."""
        return self.check_failure or self.error

    def quote_tail(self) -> str:
        lines = [line for line in self.tail if self.error is None or line.strip() != self.error]
        return ("\nLast output:\n" + "\n".join(f"  | {line}" for line in lines)) if lines else ""


# --- push -----------------------------------------------------------------------------------
def push_image(ctx: Context, reporter: Any, *, key: str = PUSH_KEY) -> PushResult:
    """Push the template's image to the deployment's registry, unless the registry already holds it."""
    from mlflow_aca.azure import acr_auth
    from mlflow_aca.docker_engine import Engine, EngineUnavailable

    started = time.monotonic()
    rendered = render_image(ctx.settings)
    login_server = registry_login_server(ctx)
    remote_repository = f"{login_server}/{rendered.repository}"
    reference = f"{remote_repository}:{rendered.tag}"
    reporter.update(key, f"signing in to {login_server}")
    login = acr_auth.sign_in(ctx.session, login_server)
    present = acr_auth.manifest_digest(login, rendered.repository, rendered.tag)
    try:
        engine = Engine.connect()
    except EngineUnavailable:
        if present:  # nothing local to compare with: the registry has this content's tag
            return PushResult(reference, present, "present", _since(started))
        raise
    try:
        local = engine.image(rendered.reference)
        # Present means: the registry's digest is the one this image got when it was pushed
        # (or there is no local image to push). A rebuild that differs is pushed over the tag.
        if present and (local is None or f"{remote_repository}@{present}" in local.repo_digests):
            return PushResult(reference, present, "present", _since(started))
        if local is None:
            raise OperationError(f"There is no local image {rendered.reference} to push.", code="ImageNotBuilt",
                                 hint="Build it first: `mlflow-aca build` (or `mlflow-aca build --remote`, which "
                                 "builds and pushes in Azure).")
        engine.tag(rendered.reference, remote_repository, rendered.tag)
        progress = PushProgress(reporter, key)
        for chunk in engine.push(remote_repository, rendered.tag, login.auth_config()):
            progress.feed(chunk)
    finally:
        engine.close()
    if progress.error is not None:
        denied = any(word in progress.error.lower() for word in ("unauthorized", "denied", "forbidden"))
        raise OperationError(f"Docker could not push {reference}: {progress.error}", code="PushFailed",
                             hint=acr_auth.DENIED_HINT if denied else "Rerun; layers already pushed are kept.")
    if progress.digest is None:
        raise OperationError(f"Docker finished pushing {reference} without reporting a digest.", code="PushFailed")
    return PushResult(reference, progress.digest, "pushed", _since(started),
                      layers_pushed=progress.count("Pushed"),
                      # A layer another repository of the registry holds is mounted, not uploaded.
                      layers_present=progress.count("Layer already exists") + progress.count("Mounted from"))


class PushProgress:
    """Per-layer progress from the engine's push stream, shown as the step's status lines."""

    def __init__(self, reporter: Any, key: str, interval: float = 0.25) -> None:
        self.reporter = reporter
        self.key = key
        self.interval = interval
        self.layers: dict[str, tuple[str, str]] = {}
        self.error: str | None = None
        self.digest: str | None = None
        self._shown = 0.0

    def feed(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            self.error = stream_error(chunk)
            return
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        layer, status = chunk.get("id"), chunk.get("status")
        if not (layer and status):
            return
        amount = chunk.get("progressDetail") or {}
        shown = ""
        if amount.get("total"):
            # The engine counts compressed bytes against the uncompressed size: cap what it says.
            current = min(amount.get("current", 0), amount["total"])
            shown = f"{current / 1e6:.1f}/{amount['total'] / 1e6:.1f} MB"
        self.layers[str(layer)] = (str(status), shown)
        self._show(final=status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"))

    def count(self, status: str) -> int:
        """Layers whose last status is (or, for "Mounted from", starts with) `status`."""
        return sum(1 for seen, _ in self.layers.values() if seen == status or seen.startswith(status + " "))

    def _show(self, final: bool) -> None:
        now = time.monotonic()
        if not final and now - self._shown < self.interval:
            return
        self._shown = now
        lines = [f"{layer[:12]}  {status} {amount}".rstrip() for layer, (status, amount) in self.layers.items()]
        self.reporter.update(self.key, "\n" + "\n".join(lines))


# --- remote build (ACR Tasks) ---------------------------------------------------------------
def build_remote(ctx: Context, reporter: Any, options: BuildOptions, *, key: str = REMOTE_KEY) -> BuildResult:
    """Build and push in Azure with an ACR Tasks quick run, streaming its log."""
    from mlflow_aca import docker_engine
    from mlflow_aca.azure import acr_tasks

    started = time.monotonic()
    rendered = render_image(ctx.settings)
    login_server = registry_login_server(ctx)
    group, registry = ctx.names.resource_group, ctx.names.registry
    with build_context(rendered) as context:
        archive = docker_engine.pack_context(context)
    reporter.update(key, f"uploading the build context ({len(archive)} bytes)")
    source = acr_tasks.upload_source(ctx.session, group, registry, archive)
    try:
        run = acr_tasks.schedule_docker_build(
            ctx.session, group, registry, source=source, dockerfile=DOCKERFILE, images=[rendered.reference],
            no_cache=options.no_cache, build_args=options.build_args)
    except OperationError as error:
        if error.code != acr_tasks.TASKS_NOT_ALLOWED:
            raise
        raise TasksNotAllowed(f"ACR Tasks refused to build in the registry {registry}: {error.message}",
                              local_possible=engine_available()) from error
    run_id = str(run["properties"]["runId"])
    reporter.update(key, f"run {run_id} {run['properties'].get('status', 'Queued')}")
    log = BuildLog(reporter, key)
    # Logs are read while they grow: poll briskly, whatever the ARM polling interval is.
    interval = min(max(ctx.settings.poll_interval, 0.2), 2.0)
    deadline = time.monotonic() + ctx.settings.timeout_minutes * 60
    for text in acr_tasks.stream_log(ctx.session, group, registry, run_id, interval=interval, deadline=deadline):
        log.text(text)
    log.close()
    final = acr_tasks.get_run(ctx.session, group, registry, run_id)["properties"]
    status = str(final.get("status"))
    if status != "Succeeded":
        reason = log.check_failure or final.get("runErrorMessage") or "no error message"
        raise OperationError(f"ACR Tasks run {run_id} ended {status}: {reason}" + log.quote_tail(),
                             code=f"Run{status}",
                             hint="Fix what the run log reports, then rerun; the log stays in the registry's "
                             "run history.")
    digest = next((image.get("digest") for image in final.get("outputImages") or []
                   if image.get("repository") == rendered.repository and image.get("tag") == rendered.tag), None)
    return BuildResult(mode="remote", image=f"{login_server}/{rendered.reference}", tag=rendered.tag,
                       seconds=_since(started), run_id=run_id, status=status, digest=digest)


# --- helpers for commands and for `up` ------------------------------------------------------
def registry_login_server(ctx: Context) -> str:
    """The registry's login server as Azure reports it (`properties.loginServer`)."""
    try:
        return str(ctx.output("registry", "login_server"))  # `up` read or created it already
    except OperationError:
        pass
    from mlflow_aca.resources.registry import Registry

    Registry().lookup(ctx)  # publishes it; raises NotProvisioned when there is no registry
    return str(ctx.output("registry", "login_server"))


def run_step(reporter: Any, key: str, label: str, work: Callable[[], _T]) -> _T:
    """One unit of work shown as a step, for commands that run a single one (build, push)."""
    reporter.start(key, label)
    try:
        result = work()
    except MlflowAcaError as error:
        reporter.finish(key, "failed", error.code)  # the error's own paragraph follows the summary
        raise
    reporter.finish(key, getattr(result, "outcome", "ok"), getattr(result, "detail", ""))
    return result


def image_steps(ctx: Context, reporter: Any, *, remote: bool | None = None,
                options: BuildOptions | None = None) -> list[Step]:
    """The steps `up` runs for the image. Local: build (depends on nothing, so it overlaps
    provisioning) then push (once the registry exists). Remote: one ACR Tasks run once the
    registry exists. The last step publishes {"reference": <login server>/<repository>:<tag>}."""
    from mlflow_aca.graph import Step

    options = options or BuildOptions()
    rendered = render_image(ctx.settings)
    if choose_remote(remote):
        return [Step(REMOTE_KEY, f"image {rendered.reference} (ACR Tasks)",
                     lambda: _remote_step(ctx, reporter, options), deps=("registry",))]
    return [
        Step(BUILD_KEY, f"build image {rendered.reference}",
             lambda: _as_step_result(build_local(ctx.settings, reporter, options))),
        Step(PUSH_KEY, f"push image {rendered.repository}", lambda: _push_step(ctx, reporter),
             deps=(BUILD_KEY, "registry")),
    ]


def _push_step(ctx: Context, reporter: Any) -> StepResult:
    result = push_image(ctx, reporter)
    ctx.publish(PUSH_KEY, {"reference": result.image, "digest": result.digest})
    return _as_step_result(result)


def _remote_step(ctx: Context, reporter: Any, options: BuildOptions) -> StepResult:
    from mlflow_aca.azure import acr_auth
    from mlflow_aca.graph import StepResult

    rendered = render_image(ctx.settings)
    login_server = registry_login_server(ctx)
    reference = f"{login_server}/{rendered.reference}"
    # A rerun of `up` converges: a tag the registry holds is not built again (unless --no-cache).
    # The check is only a shortcut: ACR Tasks builds inside Azure, so a data plane this machine
    # cannot reach or read (registry firewall, an ARM-only role) must not stop the build.
    if not options.no_cache:
        try:
            present = acr_auth.manifest_digest(acr_auth.sign_in(ctx.session, login_server), rendered.repository,
                                               rendered.tag)
        except OperationError as error:
            if error.code not in acr_auth.CHECK_FAILURES:
                raise
            reporter.log(f"Could not look for {reference} in the registry ({error.message}); building it.")
            present = None
        if present:
            ctx.publish(REMOTE_KEY, {"reference": reference, "digest": present})
            return StepResult("present", f"already in the registry ({present})", {"reference": reference})
    result = build_remote(ctx, reporter, options)
    ctx.publish(REMOTE_KEY, {"reference": result.image, "digest": result.digest})
    return _as_step_result(result)


def _as_step_result(result: BuildResult | PushResult) -> StepResult:
    from mlflow_aca.graph import StepResult

    return StepResult(result.outcome, result.detail, result.as_data())


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)
