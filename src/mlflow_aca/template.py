"""Rendering `templates/Dockerfile.j2` and naming the image after its content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_aca.errors import ConfigError

if TYPE_CHECKING:
    from mlflow_aca.config import Settings

TEMPLATE_NAME = "Dockerfile.j2"
PYODBC_VERSION = "5.5.0"


@dataclass(frozen=True)
class RenderedImage:
    dockerfile: str
    repository: str
    tag: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


def template_text() -> str:
    """The template shipped inside the package (a wheel carries it as package data).

    A source checkout run without installing has it only at the repository top level.
    """
    packaged = resources.files("mlflow_aca").joinpath("templates", TEMPLATE_NAME)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "templates" / TEMPLATE_NAME
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise ConfigError(
        f"The Dockerfile template {TEMPLATE_NAME} is missing from the installation.",
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
        mlflow_version=settings.mlflow_version,
        pyodbc_version=PYODBC_VERSION,
        extra_packages=settings.extra_packages,
    )


def content_tag(dockerfile: str, mlflow_version: str) -> str:
    """Same inputs, same tag: the MLflow version for people, a content hash for machines."""
    digest = hashlib.sha256(dockerfile.encode("utf-8")).hexdigest()[:12]
    return f"{mlflow_version}-{digest}"


def render_image(settings: Settings) -> RenderedImage:
    dockerfile = render_dockerfile(settings)
    return RenderedImage(
        dockerfile=dockerfile,
        repository=settings.image_repository,
        tag=content_tag(dockerfile, settings.mlflow_version),
    )
