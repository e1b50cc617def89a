"""Rendering `templates/Dockerfile.j2` (and the files the build copies in beside it) and naming the
image after its content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_aca.errors import ConfigError
from mlflow_aca.image_files import PLUGIN_NAME, PLUGIN_SOURCE, PLUGIN_WHEEL, plugin_wheel

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


def template_file(name: str) -> str:
    """A file shipped beside the template inside the package (a wheel carries them as package
    data). A source checkout run without installing has them only at the repository top level.
    """
    packaged = resources.files("mlflow_aca").joinpath("templates", name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "templates" / name
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise ConfigError(
        f"The image file {name} is missing from the installation.",
        code="template_missing",
        hint="Reinstall mlflow-aca.",
    )


def render_dockerfile(settings: Settings) -> str:
    import jinja2  # deferred: only build needs it

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return environment.from_string(template_text()).render(
        base_image=settings.base_image,
        install_odbc_driver=settings.install_odbc_driver,
        odbc_repository_url=settings.odbc_repository_url,  # validated in config: safe on a RUN line
        odbc_key_url=settings.odbc_key_url,
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


def context_files() -> dict[str, bytes]:
    """The files the Dockerfile copies from the build context."""
    return {PLUGIN_WHEEL: plugin_wheel(template_file(PLUGIN_SOURCE))}


def render_image(settings: Settings) -> RenderedImage:
    dockerfile = render_dockerfile(settings)
    files = context_files()
    return RenderedImage(
        dockerfile=dockerfile,
        repository=settings.image_repository,
        tag=content_tag(dockerfile, settings.mlflow_version, files),
        files=files,
    )
