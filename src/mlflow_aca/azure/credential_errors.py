"""What failed inside DefaultAzureCredential: the credential the chain stopped at and Entra's refusal.

azure-identity 1.27's chain (azure/identity/_credentials/chained.py, ChainedTokenCredential.get_token)
moves past a credential that raises CredentialUnavailableError and stops at the first one that raises
anything else, then raises a ClientAuthenticationError of its own (no cause attached) whose message
lists each attempt as "\\n\\t<credential name>: <its error>" after "\\nAttempted credentials:" and
ends with "\\nTo mitigate this issue...". So the last attempt listed is the one the chain stopped at;
it *failed* (rather than was unavailable) when its error is a refusal: the MSAL-based credentials
report one as "Authentication failed: <error_description or error>" (_internal/client_credential_base.py
`_request_token`, msal_client.py `raise_for_status`, decorators.py `wrap_exceptions`), and Entra's
error_description starts with its AADSTS code. Unavailability messages carry neither (e.g.
"EnvironmentCredential authentication unavailable. Environment variables are not fully configured.",
azure_cli.py "Azure CLI not found on path"; azure_cli.py turns az's own AADSTS errors into a failure).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_ATTEMPTS = "\nAttempted credentials:\n\t"
_MITIGATE = "\nTo mitigate this issue"
_FAILED = "Authentication failed: "
# "AADSTS7000215: Invalid client secret provided. Ensure ...\r\nTrace ID: ..." (Entra's
# error_description: learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow, "Error response").
_ENTRA = re.compile(r"AADSTS(\d+): ([^\r\n]*)")
_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)")

SERVICE_PRINCIPAL = "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET"
# AADSTS codes (learn.microsoft.com/entra/identity-platform/reference-error-codes) -> what to do.
ENTRA_HINTS = {
    "7000215": "AZURE_CLIENT_SECRET is not a valid secret of the application in AZURE_CLIENT_ID: use the secret's "
               "value (not its ID), and check that it has not expired; `az ad app credential reset --id "
               "<AZURE_CLIENT_ID>` makes a new one.",
    "7000222": "The application's client secret has expired: create a new one (`az ad app credential reset --id "
               "<AZURE_CLIENT_ID>`) and set AZURE_CLIENT_SECRET to it.",
    "700016": "The application id or the tenant is wrong: AZURE_CLIENT_ID must be the application (client) id, "
              "not its object id, of an application with a service principal in the tenant AZURE_TENANT_ID.",
    "90002": "AZURE_TENANT_ID names no tenant in this cloud: check the tenant id, and the cloud (arm_endpoint).",
    "7000216": "AZURE_CLIENT_SECRET is empty: set it to the application's client secret value.",
}
CREDENTIAL_HINTS = {
    "EnvironmentCredential": f"Check the service principal in {SERVICE_PRINCIPAL} (and AZURE_CLIENT_CERTIFICATE_PATH "
                             "if a certificate is used), or unset them to sign in another way.",
    "WorkloadIdentityCredential": "Check AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, and the "
                                  "application's federated credential (issuer and subject).",
    "AzureCliCredential": "Sign in again with `az login`.",
    "AzureDeveloperCliCredential": "Sign in again with `azd auth login`.",
    "AzurePowerShellCredential": "Sign in again with `Connect-AzAccount`.",
}


@dataclass(frozen=True)
class FailedCredential:
    credential: str          # the credential's class name, as azure-identity lists it
    detail: str              # one line: Entra's code and first sentence, or the credential's own error
    entra_code: str | None   # the AADSTS number, when Entra refused

    @property
    def hint(self) -> str:
        return (ENTRA_HINTS.get(self.entra_code or "") or CREDENTIAL_HINTS.get(self.credential)
                or "Check the credential named above, or sign in another way (`az login`).")


def failed_credential(message: str) -> FailedCredential | None:
    """The credential DefaultAzureCredential stopped at, when it failed; None when every credential
    was only unavailable (or the message is not the chain's)."""
    if _ATTEMPTS not in message:
        return None
    listed = message.split(_ATTEMPTS, 1)[1].split(_MITIGATE, 1)[0]
    name, sep, error = listed.split("\n\t")[-1].partition(": ")
    entra = _ENTRA.search(error)
    if not sep or not (entra or error.startswith(_FAILED)):
        return None
    if entra:
        first = _SENTENCE.match(entra.group(2).strip())
        detail = f"AADSTS{entra.group(1)}: {first.group(1) if first else entra.group(2).strip()}"
    else:
        detail = error[len(_FAILED):].strip().splitlines()[0] if error[len(_FAILED):].strip() else error
    return FailedCredential(name.strip(), _without_secret(detail), entra.group(1) if entra else None)


def _without_secret(text: str) -> str:
    """Entra never echoes a secret, but a credential's own error might: never show one."""
    for variable in ("AZURE_CLIENT_SECRET", "AZURE_PASSWORD", "AZURE_CLIENT_CERTIFICATE_PASSWORD"):
        value = os.environ.get(variable)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
