"""Microsoft's ODBC Driver 18 for SQL Server on the host, from PyPI, without touching system files.

`mssql-python-odbc` (the wheel mssql-python ships the driver in) carries the real driver binary
for Debian/Ubuntu. It is laid out here as Microsoft's package lays it out
(`/opt/microsoft/msodbcsql18/lib64/libmsodbcsql-18.x.so.y` with the message resources at
`../share/resources/en_US/msodbcsqlr18.rll`: the driver finds them relative to itself) and
registered in a private `odbcinst.ini`, which unixODBC reads from the folder `ODBCSYSINI` names
(unixODBC reads the variable at every connect, so setting it in-process is enough).

The driver also needs unixODBC (libodbcinst.so.2, libltdl), Kerberos (libgssapi_krb5.so.2) and,
for Entra sign-ins, libcurl.so.4 (dlopen'ed; shared/notes/odbc-and-sql.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "mssql-python-odbc"
VERSION = "18.6.2.2"
DRIVER_NAME = "ODBC Driver 18 for SQL Server"
_IN_WHEEL = "mssql_python_odbc/libs/linux/debian_ubuntu/x86_64/"
_LIBRARY = "libmsodbcsql-18.6.so.2.1"
_RESOURCES = "share/resources/en_US/msodbcsqlr18.rll"


def install(cache: Path) -> Path:
    """Lay the driver out under `cache` (downloaded once) and return the folder for ODBCSYSINI."""
    root = cache / f"msodbcsql-{VERSION}"
    library = root / "opt/microsoft/msodbcsql18/lib64" / _LIBRARY
    if not library.exists():
        wheels = cache / "wheels"
        found = sorted(wheels.glob(f"mssql_python_odbc-{VERSION}-*.whl")) if wheels.exists() else []
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                            f"{WHEEL}=={VERSION}", "-d", str(wheels)], check=True)
            found = sorted(wheels.glob(f"mssql_python_odbc-{VERSION}-*.whl"))
        staging = root.with_suffix(".partial")
        shutil.rmtree(staging, ignore_errors=True)
        base = staging / "opt/microsoft/msodbcsql18"
        with zipfile.ZipFile(found[0]) as wheel:
            for name, target in ((_IN_WHEEL + "lib/" + _LIBRARY, base / "lib64" / _LIBRARY),
                                 (_IN_WHEEL + _RESOURCES, base / _RESOURCES)):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(name))
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "odbcinst.ini").write_text(
        f"[{DRIVER_NAME}]\nDescription=Microsoft ODBC Driver 18 for SQL Server\nDriver={library}\nUsageCount=1\n")
    (etc / "odbc.ini").write_text("")
    return etc


def activate(etc: Path) -> None:
    """Point unixODBC at the private odbcinst.ini (no system file is read or written)."""
    os.environ["ODBCSYSINI"] = str(etc)
    os.environ["ODBCINSTINI"] = "odbcinst.ini"
