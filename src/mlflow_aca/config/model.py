"""The configuration model. It owns every derived value: resource names (with the deterministic
suffix for the globally unique ones) and the two URIs MLflow runs with. Field descriptions are
the single source for `init`'s comments and the README's reference table.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlflow_aca import naming, uris
from mlflow_aca.cloud import Cloud, resolve_cloud
from mlflow_aca.errors import ConfigError
from mlflow_aca.imageref import reference_parts

# Shown in URIs before the identity exists / in place of the password.
CLIENT_ID_PLACEHOLDER = "identity-client-id"
PASSWORD_PLACEHOLDER = "password"

# Memory/CPU pairs Container Apps accepts on the Consumption plan: memory is twice the vCPUs.
_CONSUMPTION_CPU = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0)
# Serverless (GP_S_Gen5_<max vCores>) compute sizes, and the lowest min vCores each allows:
# one eighth of the maximum, and never below 0.5 (Microsoft Learn, "Resource limits for single
# databases using the vCore purchasing model", General Purpose serverless tables: 0.5-1 ... 1.0-8,
# 2.5-20, 5-40, 10-80).
SERVERLESS_MAX_VCORES = (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 32, 40, 80)
# Azure SQL refuses these database names (error 40636, "Cannot use reserved database name";
# PSRule for Azure, rule Azure.SQL.DBName: master, model, tempdb).
RESERVED_DATABASE_NAMES = ("master", "model", "tempdb")
# Microsoft Learn, "Use tags to organize your Azure resources", Limitations: 50 tags per
# resource; names up to 512 characters and values up to 256, but storage accounts allow tag
# names of only 128, and every tag here lands on the storage account too. The tool adds 2.
TAG_NAME_MAX, TAG_VALUE_MAX, TAGS_MAX = 128, 256, 50 - 2
# Numeric fields: TOML `true` would otherwise be read as 1 by pydantic's lax mode.
_NUMBER_FIELDS = ("sql_max_vcores", "sql_min_capacity", "sql_auto_pause_minutes",
                  "blob_soft_delete_days", "log_retention_days", "cpu", "min_replicas",
                  "max_replicas", "workers", "poll_interval", "concurrency", "timeout_minutes", "lease_seconds",
                  "lease_settle_seconds")
# The primary key fingerprint of Microsoft's "Microsoft (Release signing)
# <gpgsecurity@microsoft.com>" key, packages.microsoft.com/keys/microsoft.asc, which signs the
# Debian 12 repository. Sources: Microsoft's Azure CLI apt instructions (2018) and Defender for
# Endpoint's Ansible guide fetch the key from packages.microsoft.com by this fingerprint
# (`--recv-keys BC528686B50D79E339D3721CEB3E94ADBE1229CF`, `apt_key: id: BC52...29CF`);
# microsoft/linux-package-repositories' README names its key id, EB3E94ADBE1229CF (the last 16
# digits); and the SHA-1 of the v4 public-key packet (RFC 4880 section 12.2) in a hex dump of
# microsoft.asc (gist Austcool-Walker/7b87b19086935a2d20398de51f00eb9d) computes to it.
MICROSOFT_KEY_FINGERPRINT = "BC528686B50D79E339D3721CEB3E94ADBE1229CF"
# odbc_repository_url / odbc_key_url: scheme, host (name or IPv4), optional port, path.
_ODBC_URL = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?(?:/[A-Za-z0-9._~%+/-]*)?")


def _group(name: str) -> dict[str, Any]:
    return {"group": name}


class Settings(BaseModel):
    """Everything `mlflow-aca` needs to know about one deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # --- deployment -----------------------------------------------------------------------
    name: Annotated[str, Field(
        description="Deployment name: the prefix of every derived resource name and the value "
        "of the mlflow-aca-deployment tag.",
        json_schema_extra=_group("Deployment"))]
    location: Annotated[str, Field(
        description="Azure region for every resource, e.g. westeurope.",
        json_schema_extra=_group("Deployment"))]
    subscription_id: Annotated[str | None, Field(
        description="Azure subscription id. Falls back to AZURE_SUBSCRIPTION_ID.",
        json_schema_extra=_group("Deployment"))] = None
    resource_group: Annotated[str | None, Field(
        description="Resource group; created (and later deletable) only if absent. "
        "Default: rg-<name>.",
        json_schema_extra=_group("Deployment"))] = None
    cloud: Annotated[Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"], Field(
        description="Azure cloud: AzureCloud, AzureChinaCloud or AzureUSGovernment. Ignored "
        "when arm_endpoint is set.",
        json_schema_extra=_group("Deployment"))] = "AzureCloud"
    arm_endpoint: Annotated[str | None, Field(
        description="Resource Manager URL of a custom cloud; its suffixes and token audience "
        "are read from <arm_endpoint>/metadata/endpoints. Env: MLFLOW_ACA_ARM_ENDPOINT.",
        json_schema_extra=_group("Deployment"))] = None
    tags: Annotated[dict[str, str], Field(
        description="Extra tags for every resource (the tool always adds managed-by and "
        "mlflow-aca-deployment).",
        json_schema_extra=_group("Deployment"))] = {}

    # --- resource names (each derived from `name` unless set) -----------------------------
    identity_name: Annotated[str | None, Field(
        description="User-assigned managed identity. Default: <name>-id.",
        json_schema_extra=_group("Resource names"))] = None
    migration_identity_name: Annotated[str | None, Field(
        description="User-assigned managed identity of the migration job, the SQL server's Entra "
        "administrator (sql_auth = entra). Default: <name>-migrate-id.",
        json_schema_extra=_group("Resource names"))] = None
    workspace_name: Annotated[str | None, Field(
        description="Log Analytics workspace. Default: <name>-logs.",
        json_schema_extra=_group("Resource names"))] = None
    storage_account_name: Annotated[str | None, Field(
        description="Storage account (globally unique). Default: st<name><suffix>.",
        json_schema_extra=_group("Resource names"))] = None
    storage_container_name: Annotated[str | None, Field(
        description="Blob container for artifacts. Default: mlflow-artifacts.",
        json_schema_extra=_group("Resource names"))] = None
    registry_name: Annotated[str | None, Field(
        description="Container registry (globally unique). Default: acr<name><suffix>.",
        json_schema_extra=_group("Resource names"))] = None
    sql_server_name: Annotated[str | None, Field(
        description="Azure SQL server (globally unique). Default: <name>-sql-<suffix>.",
        json_schema_extra=_group("Resource names"))] = None
    sql_database_name: Annotated[str | None, Field(
        description="Azure SQL database. Default: mlflow.",
        json_schema_extra=_group("Resource names"))] = None
    environment_name: Annotated[str | None, Field(
        description="Container Apps environment. Default: <name>-env.",
        json_schema_extra=_group("Resource names"))] = None
    app_name: Annotated[str | None, Field(
        description="Container app. Default: <name>.",
        json_schema_extra=_group("Resource names"))] = None
    job_name: Annotated[str | None, Field(
        description="Container Apps job that runs database migrations. Default: <name>-migrate.",
        json_schema_extra=_group("Resource names"))] = None

    # --- image -----------------------------------------------------------------------------
    mlflow_version: Annotated[str, Field(
        description="MLflow version installed in the image (mlflow[azure]==<version>).",
        json_schema_extra=_group("Image"))] = "3.17.2"
    base_image: Annotated[str, Field(
        description="Debian 12 based Python image the server image is built from. Pin it by "
        "digest (<image>:<tag>@sha256:<digest>) for a rebuild to get the same contents; keep the "
        "tag, it tells which Python the dependency lock is for.",
        json_schema_extra=_group("Image"))] = "python:3.12.12-slim-bookworm"
    install_odbc_driver: Annotated[bool, Field(
        description="Install Microsoft's ODBC Driver 18 from Microsoft's repository "
        "(odbc_repository_url; needed for Azure SQL). Turn off only where no copy of that "
        "repository is reachable.",
        json_schema_extra=_group("Image"))] = True
    odbc_repository_url: Annotated[str, Field(
        description="Apt repository the ODBC driver (msodbcsql18) is installed from: Microsoft's "
        "Debian 12 repository, or a mirror of it with the same layout.",
        json_schema_extra=_group("Image"))] = "https://packages.microsoft.com/debian/12/prod"
    odbc_key_url: Annotated[str, Field(
        description="Armored public key that signs odbc_repository_url (Microsoft's, or your "
        "mirror's).",
        json_schema_extra=_group("Image"))] = "https://packages.microsoft.com/keys/microsoft.asc"
    odbc_key_fingerprint: Annotated[str, Field(
        description="Fingerprint of the key at odbc_key_url (40 hexadecimal digits, spaces "
        "allowed); the build stops if the key it downloads has another. Default: Microsoft's "
        "(Release signing) key; set your mirror's when it signs with its own.",
        json_schema_extra=_group("Image"))] = MICROSOFT_KEY_FINGERPRINT
    extra_packages: Annotated[list[str], Field(
        description="Extra pip requirements installed into the image.",
        json_schema_extra=_group("Image"))] = []
    image_repository: Annotated[str, Field(
        description="Repository of the server image in the registry.",
        json_schema_extra=_group("Image"))] = "mlflow-server"

    # --- database --------------------------------------------------------------------------
    sql_auth: Annotated[Literal["entra", "password"], Field(
        description="How MLflow signs in to Azure SQL: entra (the managed identity, Entra-only "
        "server, no password) or password (SQL admin with a generated password).",
        json_schema_extra=_group("Database"))] = "entra"
    sql_admin_login: Annotated[str, Field(
        description="SQL administrator login when sql_auth = password.",
        json_schema_extra=_group("Database"))] = "mlflowadmin"
    sql_max_vcores: Annotated[int, Field(
        ge=1, le=80,
        description="Serverless database (GP_S_Gen5) maximum vCores.",
        json_schema_extra=_group("Database"))] = 1
    sql_min_capacity: Annotated[float, Field(
        ge=0.5, le=80,
        description="Serverless database minimum vCores.",
        json_schema_extra=_group("Database"))] = 0.5
    sql_auto_pause_minutes: Annotated[int, Field(
        description="Minutes of inactivity before the serverless database pauses; -1 never.",
        json_schema_extra=_group("Database"))] = 60
    operator_ip: Annotated[str | None, Field(
        description="An IPv4 address to admit through the SQL firewall (your own, for "
        "maintenance). Azure services are always admitted.",
        json_schema_extra=_group("Database"))] = None

    # --- storage and logs ------------------------------------------------------------------
    artifacts_path: Annotated[str, Field(
        description="Path inside the blob container under which artifacts are stored.",
        json_schema_extra=_group("Storage and logs"))] = ""
    blob_soft_delete_days: Annotated[int, Field(
        ge=1, le=365,
        description="Days deleted blobs stay recoverable.",
        json_schema_extra=_group("Storage and logs"))] = 7
    log_retention_days: Annotated[int, Field(
        ge=30, le=730,
        description="Log Analytics retention in days.",
        json_schema_extra=_group("Storage and logs"))] = 30

    # --- app -------------------------------------------------------------------------------
    cpu: Annotated[float, Field(
        description="vCPUs per replica (Consumption plan: 0.25 to 4).",
        json_schema_extra=_group("App"))] = 1.0
    memory: Annotated[str, Field(
        description="Memory per replica; must be twice the vCPUs, e.g. 2Gi for 1 vCPU.",
        json_schema_extra=_group("App"))] = "2Gi"
    min_replicas: Annotated[int, Field(
        ge=0, le=300,
        description="Minimum replicas (0 lets the app scale to zero).",
        json_schema_extra=_group("App"))] = 1
    max_replicas: Annotated[int, Field(
        ge=1, le=300,
        description="Maximum replicas.",
        json_schema_extra=_group("App"))] = 1
    allowed_ips: Annotated[list[str], Field(
        description="IPv4 addresses or CIDR ranges allowed to reach the app; empty admits all.",
        json_schema_extra=_group("App"))] = []
    workers: Annotated[int | None, Field(
        ge=1, le=32,
        description="MLflow server worker processes. Default: sized to memory.",
        json_schema_extra=_group("App"))] = None
    job_execution: Annotated[bool | None, Field(
        description="Run MLflow's background job executor. Default: only with 4Gi or more.",
        json_schema_extra=_group("App"))] = None

    # --- sign-in ---------------------------------------------------------------------------
    auth: Annotated[Literal["entra", "none"], Field(
        description="Who may use the server: entra (Microsoft Entra sign-in in front of MLflow: "
        "browsers are sent to sign in, API calls need a token) or none (no sign-in at all; "
        "only with allowed_ips or public = true).",
        json_schema_extra=_group("Sign-in"))] = "entra"
    auth_client_id: Annotated[str | None, Field(
        description="Application (client) id of an existing Entra app registration, made by an "
        "admin, to sign in with instead of one the tool registers.",
        json_schema_extra=_group("Sign-in"))] = None
    auth_allowed_principals: Annotated[list[str], Field(
        description="Object ids of the users, groups, service principals and managed identities "
        "allowed to sign in; empty admits everyone in the tenant. When set, Entra itself refuses "
        "everyone else (assignment required).",
        json_schema_extra=_group("Sign-in"))] = []
    auth_allowed_tenants: Annotated[list[str], Field(
        description="Tenant ids whose accounts may sign in. Only the subscription's own tenant "
        "is possible (the sign-in layer trusts one issuer); guests from other tenants are "
        "invited into it and allowed by object id.",
        json_schema_extra=_group("Sign-in"))] = []
    public: Annotated[bool, Field(
        description="With auth = none: confirm that the server is meant to be open to the whole "
        "internet, with no sign-in and no IP allow-list.",
        json_schema_extra=_group("Sign-in"))] = False

    # --- operation -------------------------------------------------------------------------
    poll_interval: Annotated[float, Field(
        ge=0, le=120,
        description="Seconds between polls of long-running Azure operations.",
        json_schema_extra=_group("Operation"))] = 5.0
    concurrency: Annotated[int, Field(
        ge=1, le=16,
        description="Azure operations run at the same time.",
        json_schema_extra=_group("Operation"))] = 6
    timeout_minutes: Annotated[int, Field(
        ge=1, le=240,
        description="How long a deploy waits for the new revision to become healthy.",
        json_schema_extra=_group("Operation"))] = 20
    lease_seconds: Annotated[int, Field(
        ge=5, le=3600,
        description="How long a run's hold on the deployment lasts without renewal (renewed while "
        "it runs): the longest a killed run keeps others out.",
        json_schema_extra=_group("Operation"))] = 300
    # Fischer's bound (lease.py): not a documented ARM figure, so a setting.
    lease_settle_seconds: Annotated[float, Field(
        ge=0.05, le=60,
        description="How long a run waits after writing its hold on the deployment before trusting "
        "it; when its own read and write took longer, it waits twice that instead.",
        json_schema_extra=_group("Operation"))] = 3.0

    # --- validation ------------------------------------------------------------------------
    @field_validator(
        "name", "resource_group", "location", "identity_name", "migration_identity_name", "workspace_name",
        "storage_account_name", "storage_container_name", "registry_name", "sql_server_name",
        "sql_database_name", "environment_name", "app_name", "job_name", "image_repository",
    )
    @classmethod
    def _valid_name(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            problem = naming.RULES[info.field_name].problem(value)
            if problem:
                rule = naming.RULES[info.field_name]
                raise ValueError(
                    f"{problem}. Rule: {rule.rule}. Example: {rule.example!r}"
                )
        return value

    @field_validator(*_NUMBER_FIELDS, mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"must be a number, not true/false (got {str(value).lower()})")
        return value

    @field_validator("sql_max_vcores")
    @classmethod
    def _serverless_size(cls, value: int) -> int:
        if value not in SERVERLESS_MAX_VCORES:
            raise ValueError(
                f"GP_S_Gen5_{value} is not a serverless size; use one of "
                f"{', '.join(map(str, SERVERLESS_MAX_VCORES))}"
            )
        return value

    @field_validator("sql_database_name")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in RESERVED_DATABASE_NAMES:
            raise ValueError(f"{value!r} is reserved by Azure SQL ({', '.join(RESERVED_DATABASE_NAMES)}); "
                             "e.g. 'mlflow'")
        return value

    @field_validator("subscription_id")
    @classmethod
    def _valid_subscription(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                uuid.UUID(value)
            except ValueError:
                raise ValueError(
                    "must be a subscription GUID, e.g. '00000000-0000-0000-0000-000000000000'"
                ) from None
        return value

    @field_validator("arm_endpoint")
    @classmethod
    def _valid_arm_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https://[^\s/?#@]+(/[^\s?#@]*)?", value):
            # No `user:password@`: the endpoint is shown by `config` and in messages, and ARM
            # authenticates with a bearer token, never with URL credentials.
            raise ValueError("must be an https:// URL without credentials, e.g. "
                             "'https://management.example.com'")
        return value

    @field_validator("mlflow_version")
    @classmethod
    def _valid_version(cls, value: str) -> str:
        if not re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", value):
            raise ValueError("must be an exact release such as '3.17.2'")
        return value

    @field_validator("base_image")
    @classmethod
    def _valid_image_ref(cls, value: str) -> str:
        # Docker's reference grammar (imageref.py); without a tag Docker pulls `latest`, which
        # moves, so the image would change under the same config: a tag or a digest is required.
        parts = reference_parts(value)
        if parts is None or not (parts.tag or parts.digest) or parts.tag == "latest":
            raise ValueError(
                "must be a pinned image reference, with a tag other than latest or a digest: "
                "[registry/]repository:tag[@sha256:digest], e.g. 'python:3.12.12-slim-bookworm' "
                "(no URL scheme or credentials; registry sign-in is Docker's, not the config's)"
            )
        return value

    @field_validator("odbc_repository_url", "odbc_key_url")
    @classmethod
    def _valid_odbc_url(cls, value: str) -> str:
        # Both go onto a shell RUN line in the Dockerfile and into the image's apt sources:
        # a plain http(s) URL only, no credentials (they would stay in the image), no query,
        # no whitespace, quotes or shell characters.
        if not _ODBC_URL.fullmatch(value):
            raise ValueError(
                "must be a plain http(s) URL without credentials, query, spaces, quotes or shell "
                "characters, e.g. 'https://packages.microsoft.com/debian/12/prod'"
            )
        return value

    @field_validator("odbc_key_fingerprint")
    @classmethod
    def _valid_fingerprint(cls, value: str) -> str:
        # As gpg prints it (groups of four) or run together; stored as gpg's --with-colons
        # output spells it, which is what the build compares with (Dockerfile.j2).
        compact = value.replace(" ", "").upper()
        if not re.fullmatch(r"[0-9A-F]{40}", compact):
            raise ValueError(
                "must be an OpenPGP v4 key fingerprint: 40 hexadecimal digits, spaces allowed, "
                f"e.g. {' '.join(MICROSOFT_KEY_FINGERPRINT[i:i + 4] for i in range(0, 40, 4))!r}"
            )
        return compact

    @field_validator("extra_packages")
    @classmethod
    def _valid_requirements(cls, value: list[str]) -> list[str]:
        for requirement in value:
            # A requirement goes onto a RUN line: no shell metacharacters.
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~ ]*", requirement):
                raise ValueError(f"{requirement!r} is not a plain pip requirement like 'boto3==1.35.0'")
        return value

    @field_validator("sql_admin_login")
    @classmethod
    def _valid_admin_login(cls, value: str) -> str:
        # Azure SQL refuses these logins and anything that is not a plain identifier.
        reserved = {"admin", "administrator", "sa", "root", "dbmanager", "loginmanager",
                    "dbo", "guest", "public"}
        if value.lower() in reserved or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,127}", value):
            raise ValueError(
                "must start with a letter, use letters, digits and underscores, and not be a "
                "reserved name (admin, sa, root, ...); e.g. 'mlflowadmin'"
            )
        return value

    @field_validator("sql_auto_pause_minutes")
    @classmethod
    def _valid_auto_pause(cls, value: int) -> int:
        if value != -1 and not 15 <= value <= 10080:
            raise ValueError("must be -1 (never pause) or 15-10080 minutes")
        return value

    @field_validator("operator_ip")
    @classmethod
    def _valid_operator_ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError("must be an IPv4 address such as '203.0.113.7'") from None
        return value

    @field_validator("allowed_ips")
    @classmethod
    def _valid_allowed_ips(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.IPv4Network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IPv4 address or CIDR range such as '203.0.113.0/24'"
                ) from None
        return value

    @field_validator("auth_client_id")
    @classmethod
    def _valid_client_id(cls, value: str | None) -> str | None:
        if value is not None:
            _require_guid(value, "an application (client) id")
        return value

    @field_validator("auth_allowed_principals", "auth_allowed_tenants")
    @classmethod
    def _valid_object_ids(cls, value: list[str], info: Any) -> list[str]:
        what = "a tenant id" if info.field_name == "auth_allowed_tenants" else "an object id"
        for entry in value:
            _require_guid(entry, what)
        lowered = [entry.lower() for entry in value]
        duplicates = sorted({entry for entry in lowered if lowered.count(entry) > 1})
        if duplicates:
            raise ValueError(f"{duplicates[0]!r} is listed twice")
        return lowered

    @field_validator("memory")
    @classmethod
    def _valid_memory(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?Gi", value):
            raise ValueError("must be a size in Gi, such as '2Gi'")
        return value

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > TAGS_MAX:
            raise ValueError(f"{len(value)} tags: Azure allows 50 per resource and the tool adds 2, "
                             f"so at most {TAGS_MAX}")
        for key, tag_value in value.items():
            if key.lower() in {"managed-by", "mlflow-aca-deployment"}:
                raise ValueError(f"tag {key!r} is set by the tool and cannot be overridden")
            if not 1 <= len(key) <= TAG_NAME_MAX or re.search(r"[<>%&\\?/]", key):
                raise ValueError(f"tag name {key[:40]!r} must be 1-{TAG_NAME_MAX} characters (the "
                                 "limit of the storage account, which carries every tag) without <>%&\\?/")
            if len(tag_value) > TAG_VALUE_MAX:
                raise ValueError(f"the value of tag {key[:40]!r} has {len(tag_value)} characters; "
                                 f"Azure allows {TAG_VALUE_MAX}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.cpu not in _CONSUMPTION_CPU:
            raise ValueError(
                f"cpu: {self.cpu} is not a Consumption-plan size; use one of "
                f"{', '.join(str(c) for c in _CONSUMPTION_CPU)}"
            )
        if float(self.memory[:-2]) != self.cpu * 2:
            raise ValueError(
                f"memory: {self.memory} does not match cpu {self.cpu}; Container Apps needs "
                f"memory = 2 x cpu, i.e. '{_gi(self.cpu * 2)}'"
            )
        if self.lease_settle_seconds * 4 > self.lease_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must be at least 4 x lease_settle_seconds "
                f"({self.lease_settle_seconds}): a hold must outlast its own confirmation"
            )
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is greater than max_replicas ({self.max_replicas})"
            )
        if self.auth == "none":
            if not self.allowed_ips and not self.public:
                raise ValueError(
                    "auth: 'none' would leave MLflow open to anyone on the internet (read, delete "
                    "and upload models that run code). Keep auth = 'entra', or limit who can reach "
                    "it with allowed_ips, or confirm an open server with public = true"
                )
            for key in ("auth_client_id", "auth_allowed_principals", "auth_allowed_tenants"):
                if getattr(self, key):
                    raise ValueError(f"{key}: is only used with auth = 'entra' (auth is 'none')")
        elif self.public:
            raise ValueError("public: only applies to auth = 'none'; with 'entra' the server is "
                             "reachable by anyone but usable only after sign-in")
        if len(self.auth_allowed_tenants) > 1:
            raise ValueError(
                "auth_allowed_tenants: Container Apps' sign-in layer trusts one issuer, the "
                "subscription's tenant; list only that tenant (or none), and invite accounts of "
                "other tenants as guests"
            )
        if self.sql_min_capacity > self.sql_max_vcores:
            raise ValueError(
                f"sql_min_capacity ({self.sql_min_capacity}) exceeds sql_max_vcores ({self.sql_max_vcores})"
            )
        floor = max(0.5, self.sql_max_vcores / 8)
        if self.sql_min_capacity < floor:
            raise ValueError(
                f"sql_min_capacity: {self.sql_min_capacity} is below what GP_S_Gen5_{self.sql_max_vcores} "
                f"allows; it must be at least {floor:g} (an eighth of sql_max_vcores, at least 0.5)"
            )
        return self

    # --- derived values --------------------------------------------------------------------
    @property
    def resource_group_name(self) -> str:
        return self.resource_group or f"rg-{self.name}"

    def require_subscription(self) -> str:
        if not self.subscription_id:
            raise ConfigError(
                "No Azure subscription is configured.",
                code="MissingSubscription",
                hint="Set subscription_id in mlflow-aca.toml, or export AZURE_SUBSCRIPTION_ID "
                "(or MLFLOW_ACA_SUBSCRIPTION_ID), or pass --subscription-id.",
            )
        return self.subscription_id

    @cached_property
    def names(self) -> Names:
        """Every resource name: the override when set, else derived from the deployment."""
        derived = naming.derive_names(self.name, self.require_subscription(), self.resource_group_name)
        chosen = {key: getattr(self, key) or default for key, default in derived.items()}
        for key, value in chosen.items():
            naming.check_name(key, value)
        return Names(
            resource_group=self.resource_group_name,
            **{key.removesuffix("_name"): value for key, value in chosen.items()},
        )

    @property
    def tags_for_resources(self) -> dict[str, str]:
        return {**self.tags, "managed-by": "mlflow-aca", "mlflow-aca-deployment": self.name}

    @property
    def auth_unique_name(self) -> str:
        """The app registration's uniqueName (Graph's alternate key): tenant-wide, so it carries
        the same deterministic suffix as the globally unique resource names."""
        suffix = naming.deployment_suffix(self.require_subscription(), self.resource_group_name, self.name)
        return f"mlflow-aca-{self.name}-{suffix}"

    @property
    def auth_display_name(self) -> str:
        return f"MLflow {self.name} (mlflow-aca)"

    @property
    def memory_gib(self) -> float:
        return float(self.memory[:-2])

    @property
    def server_workers(self) -> int:
        """MLflow workers: each costs about 0.5 GB, and the job runner another ~1.5 GB
        (notes/mlflow.md), so 2 GiB gets one worker with jobs off."""
        if self.workers is not None:
            return self.workers
        return max(1, min(4, int(self.memory_gib // 2)))

    @property
    def job_execution_enabled(self) -> bool:
        if self.job_execution is not None:
            return self.job_execution
        return self.memory_gib >= 4

    def cloud_info(self) -> Cloud:
        """The cloud; for a custom arm_endpoint this reads its metadata document over HTTPS."""
        return resolve_cloud(self.cloud, self.arm_endpoint)

    def backend_store_uri(self, cloud: Cloud, *, client_id: str | None = None,
                          password: str | None = None) -> str:
        """The backend store URI: Entra (the identity's client id as user) or SQL password auth."""
        names = self.names
        if self.sql_auth == "entra":
            user, secret = client_id or CLIENT_ID_PLACEHOLDER, None
        else:
            user, secret = self.sql_admin_login, PASSWORD_PLACEHOLDER if password is None else password
        return uris.backend_store_uri(
            sql_host=cloud.sql_host(names.sql_server), database=names.sql_database,
            user=user, password=secret,
        )

    def artifacts_destination(self, cloud: Cloud) -> str:
        names = self.names
        return uris.artifacts_destination(
            container=names.storage_container,
            blob_host=cloud.blob_host(names.storage_account),
            path=self.artifacts_path,
        )

    def describe(self, cloud: Cloud) -> dict[str, Any]:
        """The resolved configuration as `mlflow-aca config` shows it; no secret values."""
        backend = self.backend_store_uri(cloud)
        if self.sql_auth == "password":
            backend = uris.redact_password(backend, PASSWORD_PLACEHOLDER)
        return {
            "settings": self.model_dump(mode="json"),
            "names": asdict(self.names),
            "uris": {"backend_store": backend, "artifacts_destination": self.artifacts_destination(cloud)},
            "cloud": cloud.as_dict(),
            "server": {"workers": self.server_workers, "job_execution": self.job_execution_enabled},
            "tags": self.tags_for_resources,
            "sign_in": self.describe_sign_in(),
        }

    def describe_sign_in(self) -> dict[str, Any]:
        if self.auth == "none":
            return {"mode": "none", "open": True,
                    "reachable_from": self.allowed_ips or ["the whole internet"]}
        return {"mode": "entra",
                "registration": self.auth_client_id or f"created: {self.auth_unique_name}",
                "allowed_principals": self.auth_allowed_principals or ["everyone in the tenant"]}


@dataclass(frozen=True)
class Names:
    """Resolved resource names; fields are the config keys without their `_name` suffix."""

    resource_group: str
    identity: str
    migration_identity: str
    workspace: str
    storage_account: str
    storage_container: str
    registry: str
    sql_server: str
    sql_database: str
    environment: str
    app: str
    job: str


def _require_guid(value: str, what: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not {what}: expected a GUID such as '00000000-0000-0000-0000-000000000000'"
        ) from None
    if len(value) != 36:
        raise ValueError(f"{value!r} is not {what}: write it as 8-4-4-4-12 hexadecimal digits")


def _gi(value: float) -> str:
    return f"{value:g}Gi"
