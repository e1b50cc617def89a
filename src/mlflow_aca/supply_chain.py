"""What the server image's build pins, and what it does not (README "Image supply chain").

- Python packages: for an MLflow version mlflow-aca ships a lock for, the build installs from
  templates/constraints/mlflow-<version>-py<python>.txt (scripts/lock-image-deps.py writes it):
  every package pinned with the sha256 of each of its files. pip's hash-checking mode refuses a
  file whose hash is not listed ("Secure installs", pip.pypa.io/en/stable/topics/secure-installs:
  --require-hashes; --only-binary :all: so no build code runs). A lock is per Python minor,
  read from the base image's tag (the official python images' tags start with it,
  e.g. 3.12.12-slim-bookworm); the build checks the image's Python against it.
- The base image: pinned only when base_image carries a digest; a tag can be moved.
- Microsoft's repository key: checked against odbc_key_fingerprint in the build (Dockerfile.j2).

`notices` says, in words for `plan` and `build`, what is not pinned for a configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow_aca.config import Settings

LOCK_DIR = "constraints"  # beside Dockerfile.j2 in templates/
# Where the image keeps the lock it was installed from (a record, and the pip step's input).
LOCK_IN_IMAGE = "/usr/local/share/mlflow-aca"
# The Python minor at the start of a tag: "3.12.12-slim-bookworm", "3.12-slim", "3.11".
_TAG_PYTHON = re.compile(r"(3\.\d+)(?!\d)")


@dataclass(frozen=True)
class Lock:
    name: str  # file name in templates/constraints/ and in the build context
    mlflow_version: str
    python: str  # "3.12"


def lock_name(mlflow_version: str, python: str) -> str:
    return f"mlflow-{mlflow_version}-py{python}.txt"


def image_reference_parts(base_image: str) -> tuple[str | None, str | None]:
    """The base image's (tag, digest)."""
    from mlflow_aca.imageref import reference_parts

    parts = reference_parts(base_image)
    return (parts.tag, parts.digest) if parts else (None, None)


def base_python(base_image: str) -> str | None:
    """The Python minor the base image's tag names, or None when it names none."""
    tag, _digest = image_reference_parts(base_image)
    match = _TAG_PYTHON.match(tag or "")
    return match.group(1) if match else None


def lock_for(settings: Settings) -> Lock | None:
    """The shipped lock for this MLflow version and the base image's Python, if there is one."""
    from mlflow_aca.template import has_template_file

    python = base_python(settings.base_image)
    if python is None:
        return None
    name = lock_name(settings.mlflow_version, python)
    return Lock(name, settings.mlflow_version, python) if has_template_file(LOCK_DIR, name) else None


def locked_pythons(mlflow_version: str) -> list[str]:
    """The Python minors mlflow-aca ships a lock for, for this MLflow version."""
    from mlflow_aca.template import template_names

    prefix, suffix = f"mlflow-{mlflow_version}-py", ".txt"
    found = [name[len(prefix):-len(suffix)] for name in template_names(LOCK_DIR)
             if name.startswith(prefix) and name.endswith(suffix)]
    return sorted(found, key=lambda minor: tuple(int(part) for part in minor.split(".")))


def notices(settings: Settings) -> list[str]:
    """What the image built from this configuration does not pin, one sentence each."""
    said: list[str] = []
    reference = settings.base_image
    tag, digest = image_reference_parts(reference)
    if digest is None:
        said.append(
            f"base image {reference} is not pinned by digest: a rebuild may get different contents; pin "
            f"it with base_image = '{reference}@sha256:…' (`docker buildx imagetools inspect {reference}` "
            "prints it)")
    lock = lock_for(settings)
    if lock is None:
        said.append(f"the image's Python packages are not hash-pinned: {_why_no_lock(settings, tag)}; "
                    "pip installs what the package index serves at build time")
    elif settings.extra_packages:
        said.append(
            f"extra_packages ({', '.join(settings.extra_packages)}) are installed without hash checking "
            f"(after the locked packages, which keep the versions of {lock.name})")
    return said


def _why_no_lock(settings: Settings, tag: str | None) -> str:
    pythons = locked_pythons(settings.mlflow_version)
    if not pythons:
        return f"mlflow-aca ships no lock for MLflow {settings.mlflow_version}"
    python = base_python(settings.base_image)
    if python is None:
        shown = f"tag {tag!r}" if tag else "no tag"
        return (f"the base image's reference ({shown}) does not say its Python version, so none of the locks "
                f"for MLflow {settings.mlflow_version} (Python {', '.join(pythons)}) can be chosen; name the "
                "tag, e.g. python:3.12.12-slim-bookworm@sha256:…")
    return (f"mlflow-aca's locks for MLflow {settings.mlflow_version} are for Python {', '.join(pythons)}, "
            f"and the base image's tag says Python {python}")
