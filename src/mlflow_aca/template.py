"""Rendering `templates/Dockerfile.j2` (and the files the build copies in beside it) and naming the
image after its content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_aca.errors import ConfigError
from mlflow_aca.image_files import PLUGIN_NAME, PLUGIN_SOURCE, PLUGIN_WHEEL, plugin_wheel
from mlflow_aca.supply_chain import LOCK_DIR, LOCK_IN_IMAGE, Lock, lock_for

if TYPE_CHECKING:
    from mlflow_aca.config import Settings

TEMPLATE_NAME = "Dockerfile.j2"
PYODBC_VERSION = "5.5.0"


@dataclass(frozen=True)
class RenderedImage:
    dockerfile: str
    repository: str
    tag: str
    # Build-context files the Dockerfile copies in, by name (image_files.py).
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


def template_text() -> str:
    return template_file(TEMPLATE_NAME)


def template_file(*parts: str) -> str:
    """A file shipped beside the template inside the package (a wheel carries them as package
    data). A source checkout run without installing has them only at the repository top level.
    """
    found = _template_path(*parts)
    if found is None:
        raise ConfigError(
            f"The image file {'/'.join(parts)} is missing from the installation.",
            code="template_missing",
            hint="Reinstall mlflow-aca.",
        )
    return found.read_text(encoding="utf-8")


def has_template_file(*parts: str) -> bool:
    return _template_path(*parts) is not None


def template_names(folder: str) -> list[str]:
    """The names of the files in a folder of templates/ (empty when there is no such folder)."""
    for root in _template_roots():
        directory = root.joinpath(folder)
        if directory.is_dir():
            return sorted(entry.name for entry in directory.iterdir() if entry.is_file())
    return []


def _template_path(*parts: str) -> Any:
    for root in _template_roots():
        candidate = root.joinpath(*parts)
        if candidate.is_file():
            return candidate
    return None


def _template_roots() -> list[Any]:
    packaged = resources.files("mlflow_aca").joinpath("templates")
    checkout = Path(__file__).resolve().parents[2] / "templates"
    return [root for root in (packaged, checkout) if root.is_dir()]


def render_dockerfile(settings: Settings) -> str:
    import jinja2  # deferred: only build needs it

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return environment.from_string(template_text()).render(
        lock=lock_for(settings),
        lock_in_image=LOCK_IN_IMAGE,
        base_image=settings.base_image,
        install_odbc_driver=settings.install_odbc_driver,
        odbc_repository_url=settings.odbc_repository_url,  # validated in config: safe on a RUN line
        odbc_key_url=settings.odbc_key_url,
        odbc_key_fingerprint=settings.odbc_key_fingerprint,  # validated: 40 hex digits
        mlflow_version=settings.mlflow_version,
        pyodbc_version=PYODBC_VERSION,
        extra_packages=settings.extra_packages,
        plugin_wheel=PLUGIN_WHEEL,
        plugin_name=PLUGIN_NAME,
    )


def content_tag(dockerfile: str, mlflow_version: str, files: dict[str, bytes] | None = None) -> str:
    """Same inputs, same tag: the MLflow version for people, a content hash (of the Dockerfile
    and every file the build copies in) for machines."""
    digest = hashlib.sha256(dockerfile.encode("utf-8"))
    for name, data in sorted((files or {}).items()):
        digest.update(b"\0" + name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
    return f"{mlflow_version}-{digest.hexdigest()[:12]}"


def context_files(lock: Lock | None = None) -> dict[str, bytes]:
    """The files the Dockerfile copies from the build context: the SQL plugin's wheel, and the
    dependency lock when the build installs from one."""
    files = {PLUGIN_WHEEL: plugin_wheel(template_file(PLUGIN_SOURCE))}
    if lock is not None:
        files[lock.name] = template_file(LOCK_DIR, lock.name).encode("utf-8")
    return files


def render_image(settings: Settings) -> RenderedImage:
    dockerfile = render_dockerfile(settings)
    files = context_files(lock_for(settings))
    return RenderedImage(
        dockerfile=dockerfile,
        repository=settings.image_repository,
        tag=content_tag(dockerfile, settings.mlflow_version, files),
        files=files,
    )
