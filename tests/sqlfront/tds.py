"""The parts of MS-TDS a login needs: packets, PRELOGIN, LOGIN7, FEDAUTH and the server's tokens.

Layouts follow the MS-TDS specification ([MS-TDS] 2.2.3 packet header, 2.2.6.5 PRELOGIN,
2.2.6.4 LOGIN7 with FeatureExt 2.2.6.4/FEDAUTH, 2.2.6.3 FEDAUTH_TOKEN, 2.2.7 tokens); where the
specification leaves room, the choices of open-source clients were checked
(microsoft/go-mssqldb tds.go `sendFedAuthInfo`, token.go `parseFedAuthInfo`,
`parseFeatureExtAck`). Integers are little-endian unless the specification says otherwise
(packet header lengths and PRELOGIN option offsets are big-endian).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# -- packet types ([MS-TDS] 2.2.3.1.1) ----------------------------------------------------------------
SQL_BATCH = 0x01
RPC = 0x03
TABULAR = 0x04
ATTENTION = 0x06
TRANSACTION_MANAGER = 0x0E
FEDAUTH_TOKEN = 0x08
LOGIN7 = 0x10
PRELOGIN = 0x12
STATUS_EOM = 0x01
HEADER = struct.Struct(">BBHHBB")  # type, status, length, spid, packet id, window

# -- PRELOGIN options ([MS-TDS] 2.2.6.5) ----------------------------------------------------------------
PL_VERSION, PL_ENCRYPTION, PL_INSTOPT, PL_THREADID, PL_MARS, PL_TRACEID, PL_FEDAUTHREQUIRED, PL_NONCE = range(8)
PL_TERMINATOR = 0xFF
ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ = range(4)

# -- LOGIN7 FeatureExt ([MS-TDS] 2.2.6.4) -----------------------------------------------------------------
FEATURE_SESSIONRECOVERY = 0x01
FEATURE_FEDAUTH = 0x02
FEATURE_TERMINATOR = 0xFF
FEDAUTH_LIBRARY_SECURITYTOKEN = 0x01
FEDAUTH_LIBRARY_ADAL = 0x02   # "MSAL" in later revisions of the specification
FEDAUTHINFO_STSURL = 0x01
FEDAUTHINFO_SPN = 0x02

# -- tokens ([MS-TDS] 2.2.7) -------------------------------------------------------------------------------
TOKEN_COLMETADATA = 0x81
TOKEN_ERROR = 0xAA
TOKEN_INFO = 0xAB
TOKEN_LOGINACK = 0xAD
TOKEN_FEATUREEXTACK = 0xAE
TOKEN_ROW = 0xD1
TOKEN_ENVCHANGE = 0xE3
TOKEN_FEDAUTHINFO = 0xEE
TOKEN_DONE = 0xFD
DONE_FINAL, DONE_MORE, DONE_ERROR, DONE_COUNT = 0x00, 0x01, 0x02, 0x10
ENV_DATABASE, ENV_LANGUAGE, ENV_PACKETSIZE, ENV_COLLATION = 1, 2, 4, 7
ENV_BEGIN_TRANSACTION, ENV_COMMIT_TRANSACTION, ENV_ROLLBACK_TRANSACTION = 8, 9, 10
# Transaction manager requests ([MS-TDS] 2.2.6.9)
TM_BEGIN_XACT, TM_COMMIT_XACT, TM_ROLLBACK_XACT = 5, 7, 8
TYPE_INTN = 0x26

TDS_74 = 0x74000004


# -- packets -----------------------------------------------------------------------------------------------
def packets(kind: int, payload: bytes, packet_size: int = 4096) -> bytes:
    """`payload` as a message of one or more packets (the last one flagged end-of-message)."""
    room = packet_size - HEADER.size
    chunks = [payload[i:i + room] for i in range(0, len(payload), room)] or [b""]
    out = bytearray()
    for number, chunk in enumerate(chunks, start=1):
        status = STATUS_EOM if number == len(chunks) else 0
        out += HEADER.pack(kind, status, HEADER.size + len(chunk), 0, number % 256, 0) + chunk
    return bytes(out)


# -- PRELOGIN ----------------------------------------------------------------------------------------------
def parse_prelogin(data: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos] != PL_TERMINATOR:
        token, offset, length = struct.unpack_from(">BHH", data, pos)
        options[token] = data[offset:offset + length]
        pos += 5
    return options


def build_prelogin(options: list[tuple[int, bytes]]) -> bytes:
    header = bytearray()
    body = bytearray()
    offset = 5 * len(options) + 1
    for token, value in options:
        header += struct.pack(">BHH", token, offset + len(body), len(value))
        body += value
    return bytes(header) + bytes([PL_TERMINATOR]) + bytes(body)


# -- LOGIN7 ------------------------------------------------------------------------------------------------
@dataclass
class Login7:
    tds_version: int
    packet_size: int
    client_pid: int
    option_flags: tuple[int, int, int, int]
    host_name: str
    user_name: str
    password: str
    app_name: str
    server_name: str
    library_name: str
    language: str
    database: str
    features: dict[int, bytes] = field(default_factory=dict)
    fedauth_library: int | None = None
    fedauth_echo: bool | None = None
    fedauth_workflow: int | None = None
    fedauth_token: str | None = None


def _unobfuscate(data: bytes) -> str:
    # [MS-TDS] 2.2.6.4: each byte of the UTF-16 password had its nibbles swapped, then was XORed
    # with 0xA5; undo in the reverse order.
    plain = bytes((((b ^ 0xA5) << 4) & 0xF0) | ((b ^ 0xA5) >> 4) for b in data)
    return plain.decode("utf-16-le")


def parse_login7(data: bytes) -> Login7:
    (_length, tds_version, packet_size, _prog_version, client_pid, _connection_id, flags1, flags2, type_flags,
     flags3, _tz, _lcid) = struct.unpack_from("<IIIIIIBBBBiI", data, 0)
    # Offset/length pairs (offsets in bytes from the start of LOGIN7, lengths in characters).
    names = ("host", "user", "password", "app", "server", "extension", "library", "language", "database")
    pairs = {name: struct.unpack_from("<HH", data, 36 + 4 * i) for i, name in enumerate(names)}

    def text(name: str) -> bytes:
        offset, chars = pairs[name]
        return data[offset:offset + 2 * chars]

    login = Login7(tds_version=tds_version, packet_size=packet_size, client_pid=client_pid,
                   option_flags=(flags1, flags2, type_flags, flags3),
                   host_name=text("host").decode("utf-16-le"), user_name=text("user").decode("utf-16-le"),
                   password=_unobfuscate(text("password")), app_name=text("app").decode("utf-16-le"),
                   server_name=text("server").decode("utf-16-le"), library_name=text("library").decode("utf-16-le"),
                   language=text("language").decode("utf-16-le"), database=text("database").decode("utf-16-le"))
    if flags3 & 0x10:   # fExtension: ibExtension points at a DWORD, the offset of the FeatureExt block
        ext_offset, ext_length = pairs["extension"]
        if ext_length >= 4:
            (feature_offset,) = struct.unpack_from("<I", data, ext_offset)
            login.features = _parse_features(data, feature_offset)
    fedauth = login.features.get(FEATURE_FEDAUTH)
    if fedauth:
        login.fedauth_library = fedauth[0] >> 1
        login.fedauth_echo = bool(fedauth[0] & 1)
        if login.fedauth_library == FEDAUTH_LIBRARY_SECURITYTOKEN:
            (token_length,) = struct.unpack_from("<I", fedauth, 1)
            login.fedauth_token = fedauth[5:5 + token_length].decode("utf-16-le")
        elif login.fedauth_library == FEDAUTH_LIBRARY_ADAL and len(fedauth) > 1:
            login.fedauth_workflow = fedauth[1]
    return login


def _parse_features(data: bytes, pos: int) -> dict[int, bytes]:
    features: dict[int, bytes] = {}
    while pos < len(data) and data[pos] != FEATURE_TERMINATOR:
        feature, length = struct.unpack_from("<BI", data, pos)
        features[feature] = data[pos + 5:pos + 5 + length]
        pos += 5 + length
    return features


def parse_fedauth_token(data: bytes) -> str:
    """FEDAUTH_TOKEN message ([MS-TDS] 2.2.6.3): DataLen, TokenLen, token (UTF-16-LE), [nonce]."""
    _data_length, token_length = struct.unpack_from("<II", data, 0)
    return data[8:8 + token_length].decode("utf-16-le")


def parse_sql_batch(data: bytes) -> str:
    """SQLBatch ([MS-TDS] 2.2.6.7): ALL_HEADERS (TDS 7.2+, its first DWORD is its length), then text."""
    (headers_length,) = struct.unpack_from("<I", data, 0)
    return data[headers_length:].decode("utf-16-le", errors="replace")


def rpc_name(data: bytes) -> str:
    """An RPC request's procedure ([MS-TDS] 2.2.6.6): a name, or a well-known ProcID
    (e.g. 10 = sp_executesql, 13 = sp_prepexec)."""
    (headers_length,) = struct.unpack_from("<I", data, 0)
    (name_length,) = struct.unpack_from("<H", data, headers_length)
    if name_length == 0xFFFF:
        return f"ProcID {struct.unpack_from('<H', data, headers_length + 2)[0]}"
    return data[headers_length + 2:headers_length + 2 + 2 * name_length].decode("utf-16-le", errors="replace")


# -- server tokens -----------------------------------------------------------------------------------------
def _b_varchar(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return bytes([len(encoded) // 2]) + encoded


def _us_varchar(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return struct.pack("<H", len(encoded) // 2) + encoded


def fedauthinfo(sts_url: str, spn: str) -> bytes:
    """FEDAUTHINFO ([MS-TDS] 2.2.7.12); data offsets count from CountOfInfoIDs (as go-mssqldb reads them)."""
    items = [(FEDAUTHINFO_STSURL, sts_url.encode("utf-16-le")), (FEDAUTHINFO_SPN, spn.encode("utf-16-le"))]
    offset = 4 + 9 * len(items)
    head = bytearray(struct.pack("<I", len(items)))
    body = bytearray()
    for info_id, value in items:
        head += struct.pack("<BII", info_id, len(value), offset + len(body))
        body += value
    payload = bytes(head + body)
    return struct.pack("<BI", TOKEN_FEDAUTHINFO, len(payload)) + payload


def loginack(tds_version: int, program: str = "Microsoft SQL Server",
             version: tuple[int, int, int] = (12, 0, 2000)) -> bytes:
    # TDSVersion is sent big-endian-looking (0x74000004 as 74 00 00 04); ProgVersion is
    # major, minor, build high byte, build low byte. Azure SQL reports version 12.0.
    body = (bytes([0x01]) + struct.pack(">I", tds_version) + _b_varchar(program)
            + bytes([version[0], version[1]]) + struct.pack(">H", version[2]))
    return struct.pack("<BH", TOKEN_LOGINACK, len(body)) + body


def envchange(kind: int, new: str, old: str = "") -> bytes:
    body = bytes([kind]) + _b_varchar(new) + _b_varchar(old)
    return struct.pack("<BH", TOKEN_ENVCHANGE, len(body)) + body


def envchange_bytes(kind: int, new: bytes, old: bytes = b"") -> bytes:
    """ENVCHANGE whose values are B_VARBYTE (collation, transactions)."""
    body = bytes([kind, len(new)]) + new + bytes([len(old)]) + old
    return struct.pack("<BH", TOKEN_ENVCHANGE, len(body)) + body


def parse_transaction_request(data: bytes) -> tuple[int, bool]:
    """TransMgrReq ([MS-TDS] 2.2.6.9): ALL_HEADERS, the request type (USHORT); commit and rollback
    then carry a transaction name (B_VARCHAR) and fBeginXact. Returns (type, begin a new one)."""
    (headers_length,) = struct.unpack_from("<I", data, 0)
    pos = headers_length
    (request,) = struct.unpack_from("<H", data, pos)
    begin = False
    if request in (TM_COMMIT_XACT, TM_ROLLBACK_XACT) and len(data) > pos + 2:
        name_chars = data[pos + 2]
        flag_at = pos + 3 + 2 * name_chars
        begin = len(data) > flag_at and bool(data[flag_at])
    return request, begin


def message(kind: int, number: int, state: int, severity: int, text: str, server: str, line: int = 1) -> bytes:
    """ERROR (0xAA) or INFO (0xAB), [MS-TDS] 2.2.7.10 / 2.2.7.13."""
    body = (struct.pack("<IBB", number, state, severity) + _us_varchar(text) + _b_varchar(server)
            + _b_varchar("") + struct.pack("<I", line))
    return struct.pack("<BH", kind, len(body)) + body


def featureextack(features: list[tuple[int, bytes]]) -> bytes:
    out = bytearray([TOKEN_FEATUREEXTACK])
    for feature, data in features:
        out += struct.pack("<BI", feature, len(data)) + data
    return bytes(out + bytes([FEATURE_TERMINATOR]))


def done(status: int = DONE_FINAL, count: int = 0, command: int = 0) -> bytes:
    return struct.pack("<BHHQ", TOKEN_DONE, status, command, count)


def int_result(name: str, value: int) -> bytes:
    """One INT column, one row: COLMETADATA + ROW."""
    colmeta = (struct.pack("<BH", TOKEN_COLMETADATA, 1) + struct.pack("<IH", 0, 0x0001)  # usertype, flags: nullable
               + bytes([TYPE_INTN, 4]) + _b_varchar(name))
    return colmeta + bytes([TOKEN_ROW, 4]) + struct.pack("<i", value)
