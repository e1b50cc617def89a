"""One client connection of the SQL front: the transport (plain, then TLS inside PRELOGIN, then
TLS) and the login conversation described in front.py. `Login` is what it records."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import socketserver
import ssl
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import tds

if TYPE_CHECKING:
    from .front import SqlFront

# Error 40613 as Azure sends it while a serverless database resumes: class 20, state 1 and two
# spaces between sentences (dotnet/SqlClient#1957, a maintainer's trace of a paused serverless
# database; the message template is in SqlClient's transient-error list, dotnet/SqlClient#693).
# Another trace (microsoft/PowerPlatform-DataverseServiceClient#490) shows class 14: `refuse()`
# takes the class.
DB_UNAVAILABLE = 40613
DB_UNAVAILABLE_TEXT = ("Database '{database}' on server '{server}' is not currently available.  Please retry the "
                       "connection later.  If the problem persists, contact customer support, and provide them the "
                       "session tracing ID of '{trace}'.")
LOGIN_FAILED = 18456   # "Login failed for user '%.*ls'.", class 14, state 1 as sent to clients
NOT_SUPPORTED = 50000
# What SQL Server answers a principal without the permission for CREATE USER / ALTER ROLE (e.g.
# "Cannot alter the role 'db_datareader', because it does not exist or you do not have
# permission." is 15151; 15247 is the generic "User does not have permission to perform this
# action.", class 14 — sys.messages). The front sends 15247 for any such batch from a login that
# is not the configured administrator.
NO_PERMISSION = 15247
NO_PERMISSION_TEXT = "User does not have permission to perform this action."
# Statements only the administrator (or a principal granted ALTER ANY USER / role membership
# management) may run; the front allows them to the administrator only (stricter-plausible).
_PRIVILEGED = re.compile(r"\b(create|alter|drop)\s+(user|role|login)\b|\bsp_addrolemember\b", re.IGNORECASE)

_SELECT_INT = re.compile(r"^\s*select\s+(-?\d+)\s*;?\s*$", re.IGNORECASE)
# SQL_Latin1_General_CP1_CI_AS, Azure SQL Database's default collation, as TDS encodes it.
_COLLATION = bytes.fromhex("0904d00034")


@dataclass
class Login:
    """One connection's sign-in as the front saw it."""

    client: tuple[str, int]
    started: float
    events: list[str] = field(default_factory=list)   # the packet/token sequence, "C ..." / "S ..."
    encryption: int | None = None          # the client's PRELOGIN ENCRYPTION byte
    fedauth_required_asked: bool = False  # the client's PRELOGIN carried FEDAUTHREQUIRED
    tls_version: str | None = None
    tds_version: int | None = None
    packet_size: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    server_name: str | None = None
    app_name: str | None = None
    host_name: str | None = None
    library_name: str | None = None
    features: list[int] = field(default_factory=list)
    fedauth_library: int | None = None
    fedauth_workflow: int | None = None
    fedauth_echo: bool | None = None
    token: str | None = None
    token_nul_terminated: bool | None = None
    outcome: str = "in progress"   # accepted | refused <number> | failed <number> | closed by client: <stage>
    ended: float | None = None
    batches: list[str] = field(default_factory=list)
    statements: list["Statement"] = field(default_factory=list)   # batches other than SELECT <int>


@dataclass
class Statement:
    """A SQL batch the front took (with `accept_batches`), who sent it and how it was answered."""

    text: str
    claims: dict | None        # the login's token claims (front.claims), None for a SQL login
    user: str | None           # the SQL login's user name ("" with a token)
    outcome: str               # "done" | "denied 15247"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class ClientGone(Exception):
    pass


class Connection(socketserver.BaseRequestHandler):
    """One client connection: the transport (plain, then TLS) and the login conversation."""

    def setup(self) -> None:
        self.front: SqlFront = self.server.front
        self.sock: socket.socket = self.request
        self.sock.settimeout(120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls: ssl.SSLObject | None = None
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.plain = bytearray()   # bytes read but not yet consumed (decrypted once TLS is up)
        self.packet_size = 4096
        self.login = Login(client=self.client_address, started=time.time())
        self.front._record(self.login)

    def handle(self) -> None:
        stage = "PRELOGIN"
        try:
            if not self._prelogin():
                return
            stage = "LOGIN7"
            if not self._login():
                return
            stage = "session"
            self._session()
        except (ClientGone, OSError, ssl.SSLError) as err:
            if self.login.outcome == "in progress":
                self.login.outcome = f"closed by client: {stage}"
                if not isinstance(err, ClientGone):
                    self.login.events.append(f"! {type(err).__name__}: {err}")
        finally:
            self.login.ended = time.time()
            if self.login.outcome == "in progress":
                self.login.outcome = "closed by client: " + stage
            self.front._updated()

    # -- transport -------------------------------------------------------------------------------
    def _fill(self) -> None:
        """Read more bytes from the client into `self.plain` (decrypting once TLS is up)."""
        data = self.sock.recv(65536)
        if not data:
            raise ClientGone()
        if self.tls is None:
            self.plain += data
            return
        self.incoming.write(data)
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                raise ClientGone() from None
            if not chunk:
                raise ClientGone()
            self.plain += chunk

    def _exact(self, n: int) -> bytes:
        while len(self.plain) < n:
            self._fill()
        data = bytes(self.plain[:n])
        del self.plain[:n]
        return data

    def _read_message(self) -> tuple[int, bytes]:
        """One TDS message: packets up to the one flagged end-of-message."""
        payload = bytearray()
        while True:
            kind, status, length, _spid, _num, _window = tds.HEADER.unpack(self._exact(tds.HEADER.size))
            payload += self._exact(length - tds.HEADER.size)
            if status & tds.STATUS_EOM:
                return kind, bytes(payload)

    def _send(self, kind: int, payload: bytes) -> None:
        data = tds.packets(kind, payload, self.packet_size)
        if self.tls is None:
            self.sock.sendall(data)
        else:
            self.tls.write(data)
            self.sock.sendall(self.outgoing.read())

    def _expect(self, expected: int, name: str) -> bytes | None:
        """The next message's payload if it is of the expected kind; else the login is refused."""
        kind, payload = self._read_message()
        if kind != expected:
            self.login.events.append(f"C packet 0x{kind:02x} (expected {name})")
            self.login.outcome = f"refused: no {name}"
            return None
        return payload

    # -- PRELOGIN and TLS --------------------------------------------------------------------------
    def _prelogin(self) -> bool:
        payload = self._expect(tds.PRELOGIN, "PRELOGIN")
        if payload is None:
            return False
        options = tds.parse_prelogin(payload)
        self.login.encryption = options.get(tds.PL_ENCRYPTION, b"\x02")[0]
        self.login.fedauth_required_asked = tds.PL_FEDAUTHREQUIRED in options
        self.login.events.append("C PRELOGIN " + _describe_prelogin(options))
        # Azure SQL refuses unencrypted connections: answer ON whatever the client offered;
        # a client that cannot encrypt gives up ([MS-TDS] 2.2.6.5, ENCRYPTION negotiation).
        answer = [(tds.PL_VERSION, bytes([12, 0]) + struct.pack(">HH", 2000, 8)),
                  (tds.PL_ENCRYPTION, bytes([tds.ENCRYPT_ON if self.login.encryption != tds.ENCRYPT_NOT_SUP
                                             else tds.ENCRYPT_REQ])),
                  (tds.PL_INSTOPT, b"\x00"), (tds.PL_THREADID, b""), (tds.PL_MARS, b"\x00")]
        if self.login.fedauth_required_asked:
            answer.append((tds.PL_FEDAUTHREQUIRED, b"\x01"))
        # The server's PRELOGIN answer travels as a tabular-result packet ([MS-TDS] 2.2.3.1.1:
        # "Pre-Login response" is packet type 4); the driver reports "Protocol error in TDS
        # stream" when it comes as 0x12.
        self._send(tds.TABULAR, tds.build_prelogin(answer))
        self.login.events.append("S PRELOGIN " + _describe_prelogin(dict(answer)))
        if self.login.encryption == tds.ENCRYPT_NOT_SUP:
            return False
        self._handshake()
        return True

    def _handshake(self) -> None:
        """TLS inside PRELOGIN packets ([MS-TDS] 3.3.5.2): each side wraps its handshake records
        in 0x12 packets until the handshake ends; then TLS records flow bare."""
        tls = self.front.context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        records = 0
        while True:
            kind, payload = self._read_message()
            if kind != tds.PRELOGIN:
                raise ssl.SSLError(f"packet 0x{kind:02x} during the TLS handshake")
            records += 1
            self.incoming.write(payload)
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            pending = self.outgoing.read()
            if pending:
                self._send(tds.PRELOGIN, pending)
            if done:
                break
        self.tls = tls
        self.login.tls_version = tls.version()
        self.login.events.append(f"  TLS handshake in PRELOGIN packets ({records} from the client), {tls.version()}")

    # -- LOGIN7 ------------------------------------------------------------------------------------
    def _login(self) -> bool:
        payload = self._expect(tds.LOGIN7, "LOGIN7")
        if payload is None:
            return False
        parsed = tds.parse_login7(payload)
        rec = self.login
        rec.tds_version, rec.packet_size = parsed.tds_version, parsed.packet_size
        rec.user, rec.password, rec.database = parsed.user_name, parsed.password, parsed.database
        rec.server_name, rec.app_name, rec.host_name = parsed.server_name, parsed.app_name, parsed.host_name
        rec.library_name = parsed.library_name
        rec.features = sorted(parsed.features)
        rec.fedauth_library, rec.fedauth_workflow = parsed.fedauth_library, parsed.fedauth_workflow
        rec.fedauth_echo, rec.token = parsed.fedauth_echo, parsed.fedauth_token
        rec.events.append(
            f"C LOGIN7 tds=0x{parsed.tds_version:08x} packet_size={parsed.packet_size} user={parsed.user_name!r} "
            f"password={'(%d chars)' % len(parsed.password) if parsed.password else '(none)'} "
            f"database={parsed.database!r} server={parsed.server_name!r} app={parsed.app_name!r} "
            f"features={[hex(f) for f in sorted(parsed.features)]}"
            + (f" FEDAUTH library=0x{parsed.fedauth_library:02x} echo={int(bool(parsed.fedauth_echo))}"
               if parsed.fedauth_library is not None else "")
            + (f" workflow=0x{parsed.fedauth_workflow:02x}" if parsed.fedauth_workflow is not None else "")
            + (f" token=({len(parsed.fedauth_token)} chars)" if parsed.fedauth_token else ""))
        self.front._updated()

        if parsed.fedauth_library == tds.FEDAUTH_LIBRARY_ADAL:
            self._send(tds.TABULAR, tds.fedauthinfo(self.front.sts_url, self.front.spn))
            rec.events.append(f"S FEDAUTHINFO sts_url={self.front.sts_url} spn={self.front.spn}")
            kind, payload = self._read_message()
            if kind != tds.FEDAUTH_TOKEN:
                rec.events.append(f"C packet 0x{kind:02x} (expected FEDAUTH_TOKEN)")
                rec.outcome = "refused: no FEDAUTH_TOKEN"
                return False
            raw = tds.parse_fedauth_token(payload)
            # Observed: ODBC Driver 18.6 ends the token with a UTF-16 NUL (TokenLen counts it).
            rec.token_nul_terminated = raw.endswith("\x00")
            rec.token = raw.rstrip("\x00")
            rec.events.append(f"C FEDAUTH_TOKEN ({len(rec.token)} chars"
                              + (" + NUL terminator)" if rec.token_nul_terminated else ")"))
            self.front._updated()

        # LOGIN7 carries the server as the client wrote it, port included ("host,1433").
        fqdn = (parsed.server_name or "").split(",")[0].removeprefix("tcp:")
        server = fqdn.split(".")[0] or "sqlfront"
        refusal = self.front._take_refusal()
        if refusal is not None:
            text = refusal.text or DB_UNAVAILABLE_TEXT.format(
                database=parsed.database or "master", server=fqdn or server, trace=str(uuid.uuid4()).upper())
            return self._fail(refusal.number, refusal.state, refusal.severity, text, server, "refused")
        denied = self._denied(parsed)
        if denied is not None:
            return self._fail(LOGIN_FAILED, 1, 14, f"Login failed for user '{denied}'.", server, "failed")
        self._accept(parsed, server)
        return True

    def _denied(self, parsed: tds.Login7) -> str | None:
        """None when the login is accepted, else the user name for the 18456 message."""
        if parsed.fedauth_library is not None:
            if self.front.token_check is None:
                return None
            return self.front.token_check(self.login.token or "")
        if self.front.sql_logins is None:
            return None
        if self.front.sql_logins.get(parsed.user_name) == parsed.password:
            return None
        return parsed.user_name

    def _fail(self, number: int, state: int, severity: int, text: str, server: str, verb: str) -> bool:
        # Recorded before sending: a test reading `logins` right after the client's error sees it.
        self.login.events.append(f"S ERROR {number} class {severity} state {state}, DONE(ERROR); close")
        self.login.outcome = f"{verb} {number}"
        self.front._updated()
        self._send(tds.TABULAR, tds.message(tds.TOKEN_ERROR, number, state, severity, text, server)
                   + tds.done(tds.DONE_ERROR))
        return False

    def _accept(self, parsed: tds.Login7, server: str) -> None:
        database = parsed.database or "master"
        version = min(parsed.tds_version, tds.TDS_74)
        self.packet_size = parsed.packet_size if 512 <= parsed.packet_size <= 32767 else 4096
        tokens = (tds.envchange(tds.ENV_DATABASE, database, "master")
                  + tds.message(tds.TOKEN_INFO, 5701, 2, 0, f"Changed database context to '{database}'.", server)
                  + tds.envchange_bytes(tds.ENV_COLLATION, _COLLATION)
                  + tds.envchange(tds.ENV_LANGUAGE, "us_english")
                  + tds.message(tds.TOKEN_INFO, 5703, 1, 0, "Changed language setting to us_english.", server)
                  + tds.loginack(version))
        events = ["ENVCHANGE(database)", "INFO 5701", "ENVCHANGE(collation)", "ENVCHANGE(language)", "INFO 5703",
                  f"LOGINACK(0x{version:08x})"]
        if parsed.fedauth_library is not None:
            # FEDAUTH acknowledged with no data: no nonce was exchanged ([MS-TDS] 2.2.7.11).
            tokens += tds.featureextack([(tds.FEATURE_FEDAUTH, b"")])
            events.append("FEATUREEXTACK(FEDAUTH)")
        tokens += tds.envchange(tds.ENV_PACKETSIZE, str(self.packet_size), str(self.packet_size)) + tds.done()
        events += [f"ENVCHANGE(packet size {self.packet_size})", "DONE"]
        self.login.events.append("S " + ", ".join(events))
        self.login.outcome = "accepted"
        self.front._updated()
        self._send(tds.TABULAR, tokens)

    # -- after the login -----------------------------------------------------------------------------
    def _session(self) -> None:
        server = (self.login.server_name or "sqlfront").split(",")[0].removeprefix("tcp:").split(".")[0]
        while True:
            kind, payload = self._read_message()
            if kind == tds.SQL_BATCH:
                text = tds.parse_sql_batch(payload)
                self.login.batches.append(text)
                match = _SELECT_INT.match(text)
                if match:
                    self._send(tds.TABULAR, tds.int_result("", int(match.group(1)))
                               + tds.done(tds.DONE_COUNT, 1, 0xC1))
                    continue
                if self.front.accept_batches:
                    self._statement(text, server)
                    continue
                self._send(tds.TABULAR, tds.message(tds.TOKEN_ERROR, NOT_SUPPORTED, 1, 16,
                                                    f"The SQL front answers only SELECT <integer>; got: {text[:200]}",
                                                    server) + tds.done(tds.DONE_ERROR))
            elif kind == tds.TRANSACTION_MANAGER:
                self._transaction(tds.parse_transaction_request(payload))
            elif kind == tds.ATTENTION:
                self._send(tds.TABULAR, tds.done(0x20))   # DONE_ATTN
            else:
                what = f"RPC {tds.rpc_name(payload)}" if kind == tds.RPC else f"packet 0x{kind:02x}"
                self.login.batches.append(f"({what})")
                self._send(tds.TABULAR, tds.message(tds.TOKEN_ERROR, NOT_SUPPORTED, 1, 16,
                                                    f"The SQL front does not serve {what}.",
                                                    server) + tds.done(tds.DONE_ERROR))


    def _statement(self, text: str, server: str) -> None:
        """Record a batch; answer DONE (nothing is executed), or 15247 when it needs the
        administrator and the login is not the front's `admin`."""
        claims = self.front.claims(self.login.token) if (self.front.claims and self.login.token) else None
        if _PRIVILEGED.search(text) and not self.front.is_admin(claims, self.login.user):
            statement = Statement(text, claims, self.login.user, f"denied {NO_PERMISSION}")
            self.login.statements.append(statement)
            self.front._updated()
            self._send(tds.TABULAR, tds.message(tds.TOKEN_ERROR, NO_PERMISSION, 1, 14, NO_PERMISSION_TEXT, server)
                       + tds.done(tds.DONE_ERROR))
            return
        self.login.statements.append(Statement(text, claims, self.login.user, "done"))
        self.front._updated()
        self._send(tds.TABULAR, tds.done())

    def _transaction(self, request: tuple[int, bool]) -> None:
        """Begin/commit/rollback (pyodbc turns autocommit off with TM_BEGIN_XACT and commits with
        fBeginXact set): answered with the ENVCHANGEs a server sends; nothing is behind them."""
        kind, begin = request
        self.login.batches.append(f"(transaction request {kind}{', begin' if begin else ''})")
        token = b""
        if kind in (tds.TM_COMMIT_XACT, tds.TM_ROLLBACK_XACT):
            change = tds.ENV_COMMIT_TRANSACTION if kind == tds.TM_COMMIT_XACT else tds.ENV_ROLLBACK_TRANSACTION
            token += tds.envchange_bytes(change, b"", getattr(self, "transaction", b"\x00" * 8))
        if kind == tds.TM_BEGIN_XACT or begin:
            self.transaction = os.urandom(8)
            token += tds.envchange_bytes(tds.ENV_BEGIN_TRANSACTION, self.transaction)
        self._send(tds.TABULAR, token + tds.done())


def _describe_prelogin(options: dict[int, bytes]) -> str:
    names = {tds.PL_VERSION: "VERSION", tds.PL_ENCRYPTION: "ENCRYPTION", tds.PL_INSTOPT: "INSTOPT",
             tds.PL_THREADID: "THREADID", tds.PL_MARS: "MARS", tds.PL_TRACEID: "TRACEID",
             tds.PL_FEDAUTHREQUIRED: "FEDAUTHREQUIRED", tds.PL_NONCE: "NONCE"}
    parts = []
    for key, value in options.items():
        name = names.get(key, f"0x{key:02x}")
        if key in (tds.PL_ENCRYPTION, tds.PL_MARS, tds.PL_FEDAUTHREQUIRED) and value:
            parts.append(f"{name}={value[0]}")
        elif key == tds.PL_VERSION and len(value) >= 6:
            parts.append(f"{name}={value[0]}.{value[1]}.{struct.unpack('>H', value[2:4])[0]}")
        else:
            parts.append(f"{name}({len(value)}B)")
    return " ".join(parts)
