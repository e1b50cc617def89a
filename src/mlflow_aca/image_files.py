"""What the build context holds besides the Dockerfile: the server image's SQLAlchemy plugin
(`templates/mlflow_aca_sql.py`, which retries logins a resuming serverless database refuses),
packed as a wheel so pip installs it with its `sqlalchemy.plugins` entry point.

The wheel is made here, byte for byte the same for the same source (fixed timestamps and
order), so the image's content tag changes exactly when the plugin does. Its format follows
the wheel specification (packaging.python.org/specifications/binary-distribution-format):
METADATA, WHEEL, entry_points.txt and a RECORD with urlsafe-base64 sha256 digests, which pip
checks on install.
"""

from __future__ import annotations

PLUGIN_MODULE = "mlflow_aca_sql"
PLUGIN_SOURCE = f"{PLUGIN_MODULE}.py"
PLUGIN_VERSION = "1.0.0"
# The name the backend store URI gives as `plugin=` (SQLAlchemy looks it up in this group).
PLUGIN_NAME = "mlflow_aca"
PLUGIN_WHEEL = f"{PLUGIN_MODULE}-{PLUGIN_VERSION}-py3-none-any.whl"
_DIST_INFO = f"{PLUGIN_MODULE}-{PLUGIN_VERSION}.dist-info"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def plugin_wheel(source: str) -> bytes:
    """The plugin wheel for this module source."""
    # Deferred: only a build needs these, and uris.py imports this module for PLUGIN_NAME.
    import io
    import zipfile

    files = {
        PLUGIN_SOURCE: source.encode("utf-8"),
        f"{_DIST_INFO}/METADATA": (
            "Metadata-Version: 2.1\n"
            f"Name: {PLUGIN_MODULE}\n"
            f"Version: {PLUGIN_VERSION}\n"
            "Summary: mlflow-aca: retry Azure SQL logins refused while a serverless database resumes\n"
            "Requires-Dist: sqlalchemy>=1.4\n"
        ).encode(),
        f"{_DIST_INFO}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: mlflow-aca\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ).encode(),
        f"{_DIST_INFO}/entry_points.txt": (
            f"[sqlalchemy.plugins]\n{PLUGIN_NAME} = {PLUGIN_MODULE}:AzureSqlRetry\n"
        ).encode(),
    }
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in files.items())
    files[f"{_DIST_INFO}/RECORD"] = (record + f"{_DIST_INFO}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
