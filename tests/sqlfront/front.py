"""`SqlFront`: a TCP server that signs clients in as Azure SQL Database does, and records how.

One thread per connection. The conversation ([MS-TDS] 1.3.1, 3.3.5):

  client PRELOGIN → server PRELOGIN (ENCRYPTION on; FEDAUTHREQUIRED=1 when the client asked)
  TLS handshake, its records carried in PRELOGIN (0x12) packets; afterwards the whole stream is TLS
  client LOGIN7 (FeatureExt FEDAUTH: library 0x01 = token inline, 0x02 = the driver gets one itself)
  [library 0x02: server FEDAUTHINFO (STS URL, SPN) → client FEDAUTH_TOKEN (0x08)]
  server: ENVCHANGE database, INFO 5701, ENVCHANGE collation, ENVCHANGE language, INFO 5703,
          LOGINACK, FEATUREEXTACK (FEDAUTH), ENVCHANGE packet size, DONE
     or:  ERROR (+ DONE with DONE_ERROR), then the connection is closed

After a login, SQL batches get a minimal answer: `SELECT <integer>` returns one INT row; anything
else (other batches, RPC calls such as sp_executesql/sp_prepexec) gets ERROR 50000 "not supported
by the SQL front". Attention packets are acknowledged. With `accept_batches`, other SQL batches
are recorded (`Login.statements`: the text and the login's token claims) and answered DONE,
except that CREATE/ALTER/DROP USER, ROLE or LOGIN from a login that is not `admin` get error
15247 (class 14) as on a server where only the administrator may manage users.
"""

from __future__ import annotations

import os
import shutil
import socketserver
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import trustme

from .connection import DB_UNAVAILABLE, Connection, Login

# Azure SQL's FEDAUTHINFO: "Azure SQL endpoints return https://login.microsoftonline.com/{tenantId}"
# (dotnet/SqlClient#4496, 2026). An older JDBC trace (microsoft/mssql-jdbc#2259, 2023) logs
# "FEDAUTHINFO token stream length = 204", which is exactly https://login.windows.net/<tenant
# guid> plus https://database.windows.net/ in UTF-16: the host has changed over time; the
# driver uses only the SPN for managed identities (as the resource it asks the endpoint for).
STS_HOST = "https://login.microsoftonline.com/"
SQL_SPN = "https://database.windows.net/"


def sid_of(client_id: str) -> str:
    """The SID literal a `CREATE USER ... WITH SID = ..., TYPE = E` gives an Entra application,
    written out independently of the product's code: the client id in .NET's Guid.ToByteArray
    order (the first three groups byte-reversed, the rest as written), upper-case hex."""
    parts = client_id.lower().split("-")
    swapped = [bytes.fromhex(part)[::-1].hex() for part in parts[:3]] + parts[3:]
    return "0x" + "".join(swapped).upper()


@dataclass
class Refusal:
    count: int
    number: int
    state: int
    severity: int
    text: str | None


class SqlFront:
    """A SQL Server login front. Start with `start()` (or as a context manager).

    names: DNS names/IPs the TLS certificate covers (trustme CA); `ca_path` is the CA's PEM.
    tenant_id: the tenant in FEDAUTHINFO's STS URL.
    token_check: called with a federated token; returns None to accept it, or the user name to
      put in "Login failed for user '...'" to refuse it.
    sql_logins: {login: password}; None accepts any SQL login (and records it).
    accept_batches: record and accept SQL batches other than `SELECT <int>` (see the module doc).
    claims: token -> its claims (e.g. the stand-in's `tokens.verify`), recorded with each statement.
    admin: the server administrator, as claims it must match ({"oid": ..., "appid": ...}) or
      {"user": <SQL login>}; only it may manage users and roles. None: nobody may.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, names: tuple[str, ...] = ("127.0.0.1", "localhost"),
                 tenant_id: str | None = None, workdir: str | None = None,
                 token_check: Callable[[str], str | None] | None = None,
                 sql_logins: dict[str, str] | None = None, accept_batches: bool = False,
                 claims: Callable[[str], dict | None] | None = None, admin: dict | None = None) -> None:
        self.host = host
        self.names = tuple(names)
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.sts_url = STS_HOST + self.tenant_id
        self.spn = SQL_SPN
        self.token_check = token_check
        self.sql_logins = sql_logins
        self.accept_batches = accept_batches
        self.claims = claims
        self.admin = admin
        self.logins: list[Login] = []
        self._refusals: list[Refusal] = []
        self._changed = threading.Condition()
        self.ca = trustme.CA(organization_name="SQL front test CA")
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="sqlfront-")
        self.ca_path = os.path.join(self.workdir, "sqlfront-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # TDS 7.x carries TLS 1.2 at most: SQL Server offers TLS 1.3 only with TDS 8.0
        # (Encrypt=strict), where TLS comes before PRELOGIN (learn.microsoft.com/sql/relational-
        # databases/security/networking/tds-8).
        self.context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.leaf = self.ca.issue_cert(*self.names)
        self.leaf.configure_cert(self.context)
        self.cert_path = os.path.join(self.workdir, "sqlfront-cert.pem")   # the server's own certificate
        self.leaf.cert_chain_pems[0].write_to_path(self.cert_path)
        self._server = _Server((host, port), self)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "SqlFront":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sqlfront", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "SqlFront":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- steering --------------------------------------------------------------------------------
    def refuse(self, count: int, number: int = DB_UNAVAILABLE, *, state: int = 1, severity: int = 20,
               text: str | None = None) -> None:
        """Answer the next `count` logins with ERROR `number` (default 40613 as during a serverless
        resume) instead of LOGINACK; later logins are accepted again."""
        with self._changed:
            self._refusals.append(Refusal(count, number, state, severity, text))

    def clear(self) -> None:
        """Forget recorded logins and pending refusals."""
        with self._changed:
            self.logins.clear()
            self._refusals.clear()

    # -- reading ---------------------------------------------------------------------------------
    def wait_for_login(self, timeout: float = 30.0, predicate: Callable[[Login], bool] | None = None,
                       finished: bool = True) -> Login:
        """The first recorded login matching `predicate` (and, with `finished`, no longer in progress)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for login in self.logins:
                    if (not finished or login.outcome != "in progress") and (predicate is None or predicate(login)):
                        return login
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching login within {timeout}s; seen: "
                                       f"{[(x.user, x.outcome) for x in self.logins]}")
                self._changed.wait(remaining)

    def statements(self) -> list:
        """Every recorded statement, in login order."""
        with self._changed:
            return [statement for login in self.logins for statement in login.statements]

    def is_admin(self, claims: dict | None, user: str | None) -> bool:
        """Whether a login (its token claims, or its SQL user name) is the configured administrator."""
        if not self.admin:
            return False
        if "user" in self.admin:
            return bool(user) and user == self.admin["user"]
        return claims is not None and all(str(claims.get(k, "")).lower() == str(v).lower()
                                          for k, v in self.admin.items())

    def ca_bundle(self, path: str, system: str = "/etc/ssl/certs/ca-certificates.crt") -> str:
        """Write the system's CAs followed by this front's CA to `path` (to mount over the system
        bundle in a container); returns `path`."""
        with open(system, "rb") as src:
            system_pem = src.read()
        with open(path, "wb") as out:
            out.write(system_pem.rstrip(b"\n") + b"\n" + self.ca.cert_pem.bytes())
        return path

    def info(self) -> dict:
        return {"host": self.host, "port": self.port, "names": list(self.names), "ca_path": self.ca_path,
                "sts_url": self.sts_url, "spn": self.spn, "tenant_id": self.tenant_id}

    # -- used by connections ---------------------------------------------------------------------
    def _record(self, login: Login) -> None:
        with self._changed:
            self.logins.append(login)
            self._changed.notify_all()

    def _updated(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _take_refusal(self) -> Refusal | None:
        with self._changed:
            while self._refusals and self._refusals[0].count <= 0:
                self._refusals.pop(0)
            if not self._refusals:
                return None
            self._refusals[0].count -= 1
            return self._refusals[0]


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], front: SqlFront) -> None:
        super().__init__(address, Connection)
        self.front = front

    def handle_error(self, request, client_address) -> None:
        pass   # a client going away mid-conversation is recorded on its Login, not printed
