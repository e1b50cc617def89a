"""The request-auth provider's own logic: scope checks, the token cache and its timing (a fake
clock and a fake credential of our own, speaking azure-core's get_token_info), error text."""

from __future__ import annotations

import threading
import time

import pytest
from azure.core.credentials import AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError

from mlflow_aca import client_auth
from mlflow_aca.client_auth import (REFRESH_MARGIN, RETRY_FAILED_REFRESH, SignInError, TokenCache, refresh_time,
                                    resource_of, scope_from)

APP_ID = "6d5b8f55-1a3b-4c5d-9e8f-0123456789ab"
SCOPE = f"api://{APP_ID}/.default"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Credential:
    """Hands out numbered tokens living `lifetime` seconds; `fail` makes the next calls raise."""

    def __init__(self, clock: Clock, lifetime: float = 3600, refresh_in: float | None = None) -> None:
        self.clock, self.lifetime, self.refresh_in = clock, lifetime, refresh_in
        self.calls: list[str] = []
        self.fail: str | None = None
        self.same_token = False

    def get_token_info(self, *scopes: str) -> AccessTokenInfo:
        self.calls.extend(scopes)
        if self.fail:
            raise ClientAuthenticationError(self.fail)
        number = 1 if self.same_token else len(self.calls)
        now = self.clock()
        refresh_on = int(now + self.refresh_in) if self.refresh_in else None
        return AccessTokenInfo(f"token-{number}", int(now + self.lifetime), refresh_on=refresh_on)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cache_with(credential: Credential, clock: Clock) -> TokenCache:
    return TokenCache(SCOPE, lambda: credential, clock=clock)


# --- scope ------------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", [SCOPE, f"{APP_ID}/.default", "https://mlflow.contoso.example/.default",
                                   f"  {SCOPE}\n"])
def test_accepted_scopes(scope):
    assert scope_from({"MLFLOW_ACA_AUTH_SCOPE": scope}) == scope.strip()


def test_unset_scope_says_which_variable_and_what_value():
    with pytest.raises(SignInError) as raised:
        scope_from({})
    assert "MLFLOW_ACA_AUTH_SCOPE" in raised.value.message
    assert "api://<application id>/.default" in raised.value.message


@pytest.mark.parametrize("scope", [f"api://{APP_ID}", APP_ID, f"api://{APP_ID}/.default extra",
                                   "api:///.default", "user_impersonation", f"api://{APP_ID}/user_impersonation"])
def test_malformed_scope_is_refused_with_the_expected_form(scope):
    with pytest.raises(SignInError) as raised:
        scope_from({"MLFLOW_ACA_AUTH_SCOPE": scope})
    assert "is not a token scope" in raised.value.message
    assert "/.default" in raised.value.message


def test_resource_of_a_scope_is_the_token_audience():
    assert resource_of(SCOPE) == f"api://{APP_ID}"


def test_provider_is_named_mlflow_aca_and_reads_the_scope_per_call(monkeypatch):
    provider = client_auth.EntraRequestAuthProvider()
    assert provider.get_name() == "mlflow-aca"
    monkeypatch.setenv("MLFLOW_ACA_AUTH_SCOPE", SCOPE)
    first = provider.get_auth()
    assert provider.get_auth() is first  # one cache per scope and process
    assert first.cache.scope == SCOPE
    monkeypatch.delenv("MLFLOW_ACA_AUTH_SCOPE")
    with pytest.raises(SignInError):
        provider.get_auth()


# --- caching and timing ---------------------------------------------------------------------------
def test_credential_is_made_on_first_token_only_and_token_reused(clock):
    made = []
    credential = Credential(clock)
    cache = TokenCache(SCOPE, lambda: made.append(1) or credential, clock=clock)
    assert made == []
    assert cache.token() == ("token-1", True)
    clock.now += 60
    assert cache.token() == ("token-1", False)
    assert cache.token() == ("token-1", False)
    assert made == [1]
    assert credential.calls == [SCOPE]


def test_renewed_refresh_margin_before_expiry(clock):
    credential = Credential(clock, lifetime=3600)
    cache = cache_with(credential, clock)
    cache.token()
    clock.now = T0 + 3600 - REFRESH_MARGIN - 1
    assert cache.token() == ("token-1", False)
    clock.now = T0 + 3600 - REFRESH_MARGIN
    assert cache.token() == ("token-2", True)


def test_refresh_on_is_respected(clock):
    # MSAL gives managed-identity tokens of 24 h a refresh_on at half their lifetime.
    credential = Credential(clock, lifetime=86400, refresh_in=43200)
    cache = cache_with(credential, clock)
    cache.token()
    clock.now = T0 + 43199
    assert cache.token()[0] == "token-1"
    clock.now = T0 + 43200
    assert cache.token()[0] == "token-2"


def test_short_lived_token_is_reused_for_half_its_life(clock):
    credential = Credential(clock, lifetime=10)
    cache = cache_with(credential, clock)
    cache.token()
    clock.now = T0 + 4.9
    assert cache.token()[0] == "token-1"
    clock.now = T0 + 5
    assert cache.token()[0] == "token-2"


def test_past_refresh_on_does_not_make_every_request_ask(clock):
    info = AccessTokenInfo("t", int(T0 + 3600), refresh_on=int(T0 - 10))
    assert refresh_time(info, T0) == T0 + 3600 - REFRESH_MARGIN


def test_failed_renewal_keeps_a_still_valid_token_and_retries_later(clock):
    credential = Credential(clock, lifetime=3600)
    cache = cache_with(credential, clock)
    cache.token()
    credential.fail = "AzureCliCredential: az timed out"
    clock.now = T0 + 3600 - REFRESH_MARGIN
    assert cache.token() == ("token-1", False)
    asked = len(credential.calls)
    clock.now += RETRY_FAILED_REFRESH - 1
    assert cache.token() == ("token-1", False)
    assert len(credential.calls) == asked  # not asked on every request meanwhile
    credential.fail = None
    clock.now += 1
    assert cache.token() == ("token-3", True)


def test_failed_renewal_of_an_expiring_token_is_an_error(clock):
    credential = Credential(clock, lifetime=3600)
    cache = cache_with(credential, clock)
    cache.token()
    credential.fail = "EnvironmentCredential: not configured"
    clock.now = T0 + 3600 - 30
    with pytest.raises(SignInError):
        cache.token()


def test_one_fetch_for_concurrent_first_requests(clock):
    credential = Credential(clock)
    slow = credential.get_token_info

    def get_token_info(*scopes):
        time.sleep(0.05)
        return slow(*scopes)

    credential.get_token_info = get_token_info
    cache = cache_with(credential, clock)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.token()[0])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["token-1"] * 8
    assert credential.calls == [SCOPE]


def test_renew_replaces_the_rejected_token_once(clock):
    credential = Credential(clock)
    cache = cache_with(credential, clock)
    cache.token()
    assert cache.renew("token-1") == "token-2"
    # A second request refused with token-1 meanwhile gets token-2 without another fetch.
    assert cache.renew("token-1") == "token-2"
    assert len(credential.calls) == 2
    assert cache.token() == ("token-2", False)


def test_renew_gives_none_when_the_credential_has_no_other_token(clock):
    credential = Credential(clock)
    credential.same_token = True
    cache = cache_with(credential, clock)
    cache.token()
    assert cache.renew("token-1") is None


# --- error text -----------------------------------------------------------------------------------
def test_no_credential_error_says_what_to_do_and_quotes_the_credential_without_secrets(clock, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cr3t-value-xyz")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
    credential = Credential(clock)
    credential.fail = ("DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
                       f"Attempted credentials:\n\tEnvironmentCredential: bad secret s3cr3t-value-xyz\n"
                       f"\tManagedIdentityCredential: got {jwt}")
    with pytest.raises(SignInError) as raised:
        cache_with(credential, clock).token()
    message = raised.value.message
    first_line = message.splitlines()[0]
    assert first_line.startswith(f"mlflow-aca could not get a token for {SCOPE}: sign in with `az login`")
    assert "AZURE_CLIENT_ID" in first_line
    assert "DefaultAzureCredential failed to retrieve a token" in message
    assert "s3cr3t-value-xyz" not in message and jwt not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
