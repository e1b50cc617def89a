"""`--image`: a container image reference, checked before anything is written.

The grammar is the one Docker and Container Apps parse references with (distribution/reference,
regexp.go): `[domain[:port]/]path[:tag][@digest]`, path components lowercase, a name of at most
255 characters. An empty value is a usage error (typically an unset CI variable), never a silent
fall-back to the template's image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlflow_aca.errors import ConfigError, UsageError

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?")
NAME_MAX = 255


@dataclass(frozen=True)
class ReferenceParts:
    name: str
    tag: str | None
    digest: str | None


def reference_parts(value: str) -> ReferenceParts | None:
    """A reference's name, tag and digest, or None when it is not a reference at all."""
    match = _REFERENCE.fullmatch(value)
    if match is None or len(match.group("name")) > NAME_MAX:
        return None
    tag, _, digest = value[match.end("name"):].partition("@")
    return ReferenceParts(match.group("name"), tag[1:] or None, digest or None)


def checked_image(value: str | None) -> str | None:
    """The --image value, or the reason it cannot be one."""
    if value is None:
        return None
    if not value.strip():
        raise UsageError(
            "--image is empty.",
            hint="Pass an image reference such as myregistry.azurecr.io/mlflow-server:3.17.2, or leave "
            "--image out to deploy the image built from the template (check the CI variable that "
            "should have filled it).")
    if reference_parts(value) is None:
        raise ConfigError(
            f"--image {value!r} is not an image reference.",
            code="InvalidImageReference",
            hint="Use [registry[:port]/]repository[:tag][@sha256:digest] with a lowercase repository, "
            "e.g. myregistry.azurecr.io/mlflow-server:3.17.2.")
    return value
