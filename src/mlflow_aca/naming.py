"""Azure's naming rules for every resource the tool creates, and how default names are derived.

The rules come from Azure's "Naming rules and restrictions for Azure resources" page and the
resource providers' own validation. They are checked before any Azure call so that a bad name is
reported with the key, the value, the rule and a valid example instead of an HTTP 400 halfway
through a provision.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from mlflow_aca.errors import ConfigError


@dataclass(frozen=True)
class NameRule:
    resource: str
    min_len: int
    max_len: int
    pattern: str  # full-match regular expression for the allowed shape
    rule: str  # the rule in words, as the error message shows it
    example: str
    no_double_hyphen: bool = False
    globally_unique: bool = False

    def problem(self, value: str) -> str | None:
        """Why `value` breaks this rule, or None when it is valid."""
        if not self.min_len <= len(value) <= self.max_len:
            return f"length is {len(value)}, must be {self.min_len}-{self.max_len}"
        if not re.fullmatch(self.pattern, value):
            return "contains characters or a shape the rule does not allow"
        if self.no_double_hyphen and "--" in value:
            return "contains '--'"
        return None


# Lowercase letters, digits and single hyphens; starts with a letter, ends with a letter or digit.
_DNS_LABEL = r"[a-z][a-z0-9-]*[a-z0-9]"

# Microsoft.ManagedIdentity's rule, for both of the deployment's identities.
_USER_IDENTITY = NameRule(
    "user-assigned identity", 3, 128, r"[A-Za-z0-9][A-Za-z0-9_-]*",
    "3-128 characters: letters, digits, hyphens and underscores, starting with a letter or digit",
    "mlflow-id",
)

RULES: dict[str, NameRule] = {
    # The deployment name feeds every derived name; 24 keeps "<name>-migrate" within the
    # 32-character limit of Container Apps jobs.
    "name": NameRule(
        "deployment", 2, 24, _DNS_LABEL,
        "2-24 characters: lowercase letters, digits and hyphens, starting with a letter, "
        "ending with a letter or digit, no '--'",
        "mlflow-team", no_double_hyphen=True,
    ),
    "resource_group": NameRule(
        "resource group", 1, 90, r"[\w().-]*[\w()-]",
        "1-90 characters: letters, digits, underscores, hyphens, periods and parentheses, "
        "not ending with a period",
        "rg-mlflow",
    ),
    "location": NameRule(
        "location", 2, 40, r"[a-z][a-z0-9]*",
        "an Azure region name: lowercase letters and digits, no spaces",
        "westeurope",
    ),
    "identity_name": _USER_IDENTITY,
    # The migration job's identity (the SQL server's Entra administrator): the same rule.
    "migration_identity_name": replace(_USER_IDENTITY, example="mlflow-migrate-id"),
    "workspace_name": NameRule(
        "Log Analytics workspace", 4, 63, r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]",
        "4-63 characters: letters, digits and hyphens, starting and ending with a letter or "
        "digit",
        "mlflow-logs",
    ),
    "storage_account_name": NameRule(
        "storage account", 3, 24, r"[a-z0-9]+",
        "3-24 characters: lowercase letters and digits only; unique across all of Azure",
        "stmlflow1a2b3c", globally_unique=True,
    ),
    "storage_container_name": NameRule(
        "blob container", 3, 63, r"[a-z0-9][a-z0-9-]*[a-z0-9]",
        "3-63 characters: lowercase letters, digits and hyphens, starting and ending with a "
        "letter or digit, no '--'",
        "mlflow-artifacts", no_double_hyphen=True,
    ),
    "registry_name": NameRule(
        "container registry", 5, 50, r"[A-Za-z0-9]+",
        "5-50 characters: letters and digits only; unique across all of Azure",
        "acrmlflow1a2b3c", globally_unique=True,
    ),
    "sql_server_name": NameRule(
        "SQL server", 1, 63, r"[a-z0-9]([a-z0-9-]*[a-z0-9])?",
        "1-63 characters: lowercase letters, digits and hyphens, not starting or ending with "
        "a hyphen; unique across all of Azure",
        "mlflow-sql-1a2b3c", globally_unique=True,
    ),
    "sql_database_name": NameRule(
        "SQL database", 1, 128, r"[^<>*%&:\\/?\x00-\x1f]*[^<>*%&:\\/?\x00-\x1f. ]",
        "1-128 characters, none of < > * % & : \\ / ? or control characters, not ending with "
        "a period or a space",
        "mlflow",
    ),
    "environment_name": NameRule(
        "Container Apps environment", 2, 60, _DNS_LABEL,
        "2-60 characters: lowercase letters, digits and hyphens, starting with a letter, "
        "ending with a letter or digit, no '--'",
        "mlflow-env", no_double_hyphen=True,
    ),
    "app_name": NameRule(
        "container app", 2, 32, _DNS_LABEL,
        "2-32 characters: lowercase letters, digits and hyphens, starting with a letter, "
        "ending with a letter or digit, no '--'",
        "mlflow", no_double_hyphen=True,
    ),
    "job_name": NameRule(
        "Container Apps job", 2, 32, _DNS_LABEL,
        "2-32 characters: lowercase letters, digits and hyphens, starting with a letter, "
        "ending with a letter or digit, no '--'",
        "mlflow-migrate", no_double_hyphen=True,
    ),
    "image_repository": NameRule(
        "image repository", 1, 128, r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*",
        "lowercase letters, digits and single separators (. _ -), path components joined "
        "by '/'",
        "mlflow-server",
    ),
}


def check_name(key: str, value: str) -> None:
    """Raise a ConfigError naming the key, the value, the rule and a valid example."""
    rule = RULES[key]
    problem = rule.problem(value)
    if problem is None:
        return
    raise ConfigError(
        f"Invalid {rule.resource} name for '{key}': {value!r} ({problem}). "
        f"Rule: {rule.rule}. Example: {rule.example!r}.",
        code="invalid_name",
        hint=f"Set '{key}' in the config file (or --{key.replace('_', '-')}) to a valid name.",
    )


def deployment_suffix(subscription_id: str, resource_group: str, name: str) -> str:
    """Six lowercase hex characters, stable for one (subscription, resource group, name).

    Globally unique names need something beyond the deployment name, and a rerun must find the
    same resources, so the suffix is a hash of the deployment's identity rather than random.
    """
    key = f"{subscription_id.lower()}/{resource_group.lower()}/{name.lower()}"
    return hashlib.sha256(key.encode()).hexdigest()[:6]


def compact(name: str) -> str:
    """The deployment name with everything but lowercase letters and digits removed."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def derive_names(name: str, subscription_id: str, resource_group: str) -> dict[str, str]:
    """Default resource names for a deployment; each one can be overridden in the config."""
    suffix = deployment_suffix(subscription_id, resource_group, name)
    short = compact(name)
    return {
        "identity_name": f"{name}-id",
        "migration_identity_name": f"{name}-migrate-id",
        "workspace_name": f"{name}-logs",
        # "st" + up to 16 + 6 = at most 24 characters.
        "storage_account_name": f"st{short[:16]}{suffix}",
        "storage_container_name": "mlflow-artifacts",
        # "acr" + up to 41 + 6 = at most 50 characters.
        "registry_name": f"acr{short[:41]}{suffix}",
        "sql_server_name": f"{name}-sql-{suffix}",
        "sql_database_name": "mlflow",
        "environment_name": f"{name}-env",
        "app_name": name,
        "job_name": f"{name}-migrate",
    }
