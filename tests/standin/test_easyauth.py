"""Container Apps built-in authentication ("Easy Auth"): the authConfigs resource through the real
SDK, and the sign-in layer in front of the app through the real proxy (HTTPS_PROXY, the stand-in's
CA), in front of the built-in answer and of a real HTTP backend."""

import hashlib
import http.server
import json
import re
import threading
import time
import uuid
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .conftest import app_body

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
BIG = bytes(range(256)) * 4096          # 1 MiB
INFO = "/api/2.0/mlflow/server-info"   # the built-in answer's 200 (MLflow's server-info)


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
def site(standin, azure, group, env, standin_env):
    """An MLflow-like container app with external ingress, and what its auth config refers to."""
    body = app_body(group, env)
    body["properties"]["template"]["containers"][0]["env"].append(
        {"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": "mlflow.*.azurecontainerapps.io"})
    app = azure.aca.container_apps.begin_create_or_update(group.name, "mlflow", body).result()
    tenant = standin.tenant_id
    fqdn = app.configuration.ingress.fqdn
    return SimpleNamespace(app=app, fqdn=fqdn, url=f"https://{fqdn}",
                           client_id=str(uuid.uuid4()), tenant=tenant, issuer=f"{standin.url}/{tenant}/v2.0",
                           user=str(uuid.uuid4()), group_id=str(uuid.uuid4()))


def configure(azure, site, *, action="RedirectToLoginPage", identities=None, groups=None, **extra):
    """The auth config exactly as the product writes it (issue 10), with overrides."""
    policy = {"allowedPrincipals": {"identities": [site.user] if identities is None else identities,
                                    "groups": groups or []}}
    policy.update(extra.pop("policy", {}))
    props = {"platform": {"enabled": True},
             "globalValidation": {"unauthenticatedClientAction": action, "redirectToProvider": "azureactivedirectory",
                                  "excludedPaths": ["/health"]},
             "identityProviders": {"azureActiveDirectory": {"enabled": True, "registration": {
                 "clientId": site.client_id, "openIdIssuer": site.issuer},
                 "validation": {"allowedAudiences": [f"api://{site.client_id}", site.client_id],
                                "defaultAuthorizationPolicy": policy}}},
             "httpSettings": {"requireHttps": True}, **extra}
    return azure.aca.container_apps_auth_configs.create_or_update("rg-test", "mlflow", "current", {"properties": props})


def token(standin, site, *, aud=None, oid=None, lifetime=600, iss=None, **claims):
    now = int(time.time())
    body = {"aud": aud or f"api://{site.client_id}", "iss": iss or site.issuer, "tid": site.tenant,
            "oid": oid or site.user, "sub": oid or site.user, "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "preferred_username": "ada@contoso.example", "name": "Ada", "iat": now, "nbf": now, "exp": now + lifetime}
    body.update(claims)
    return standin.app.tokens.sign(body)


def bearer(value):
    return {"Authorization": f"Bearer {value}"}


class _Echo(http.server.BaseHTTPRequestHandler):
    """A real backend: tells what it received (path, the X-MS-* headers, the body's size and hash);
    GET /big answers 1 MiB."""
    protocol_version = "HTTP/1.1"

    def _serve(self):
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while (size := int(self.rfile.readline().strip() or b"0", 16)):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/big" and self.command == "GET":
            payload = BIG
        else:
            payload = json.dumps({"method": self.command, "path": self.path, "size": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest(),
                                  "ms": {k.lower(): v for k, v in self.headers.items()
                                         if k.lower().startswith("x-ms-")},
                                  "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = _serve

    def log_message(self, *args):
        pass


@pytest.fixture
def backend(standin, site):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    standin.set_app_endpoint(site.app.id, backend=f"127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()
    server.server_close()


def get(site, path, **kwargs):
    return requests.get(site.url + path, timeout=10, allow_redirects=False, **kwargs)


# -- the ARM resource ----------------------------------------------------------------------------------
def test_auth_config_crud_through_the_sdk(standin, azure, site):
    configs = azure.aca.container_apps_auth_configs
    created = configure(azure, site)
    assert created.name == "current" and created.type == "Microsoft.App/containerApps/authConfigs"
    assert created.id == f"{site.app.id}/authConfigs/current"
    assert created.platform.enabled is True
    assert created.identity_providers.azure_active_directory.registration.client_id == site.client_id
    assert created.global_validation.excluded_paths == ["/health"]
    shown = configs.get("rg-test", "mlflow", "current")
    assert shown.identity_providers.azure_active_directory.validation.default_authorization_policy \
        .allowed_principals.identities == [site.user]
    assert [c.name for c in configs.list_by_container_app("rg-test", "mlflow")] == ["current"]
    configs.delete("rg-test", "mlflow", "current")
    configs.delete("rg-test", "mlflow", "current")          # absent: 204, no error
    with pytest.raises(ResourceNotFoundError):
        configs.get("rg-test", "mlflow", "current")
    # the spec: PUT answers 200 (sync) even when it creates; DELETE 200, then 204 when absent
    assert [r["status"] for r in standin.requests("PUT", "/authConfigs/")] == [200]
    assert [r["status"] for r in standin.requests("DELETE", "/authConfigs/")] == [200, 204]


def _error(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value


@pytest.mark.parametrize("change, code", [
    ({"globalValidation": {"unauthenticatedClientAction": "RedirectSomewhere"}}, "InvalidParameterValue"),
    ({"identityProviders": {"azureActiveDirectory": {"enabled": True, "registration": {
        "openIdIssuer": "https://login.example/t/v2.0"}}}}, "InvalidParameterValue"),
    ({"identityProviders": {"azureActiveDirectory": {"registration": {
        "clientId": "x", "openIdIssuer": "http://login.example/t/v2.0"}}}}, "InvalidParameterValue"),
    ({"login": {"cookieExpiration": {"convention": "Forever"}}}, "InvalidParameterValue"),
])
def test_auth_config_validation(azure, site, change, code):
    body = {"properties": {"platform": {"enabled": True}, **change}}
    err = _error(lambda: azure.aca.container_apps_auth_configs.create_or_update("rg-test", "mlflow", "current", body))
    assert (err.status_code, err.error.code) == (400, code)


def test_auth_config_name_app_and_cascade(standin, azure, site):
    configs = azure.aca.container_apps_auth_configs
    body = {"properties": {"platform": {"enabled": False}}}
    assert _error(lambda: configs.create_or_update("rg-test", "mlflow", "other", body)).status_code == 400
    assert _error(lambda: configs.create_or_update("rg-test", "absent", "current", body)).status_code == 404
    configure(azure, site)
    azure.aca.container_apps.begin_delete("rg-test", "mlflow").result()
    assert standin.resources("Microsoft.App/containerApps/authConfigs") == []


# -- unauthenticated requests --------------------------------------------------------------------------
def test_without_the_auth_config_the_app_is_open(site):
    assert get(site, "/api/2.0/mlflow/server-info").status_code == 200


def test_redirect_to_login_for_browsers_401_for_api_clients(standin, azure, site):
    configure(azure, site)
    api = get(site, "/api/2.0/mlflow/server-info")
    assert api.status_code == 401
    assert api.headers["WWW-Authenticate"].startswith(f'Bearer realm="{site.fqdn}" authorization_uri="{standin.url}/'
                                                      f'{site.tenant}/oauth2/v2.0/authorize"')
    page = get(site, "/static-files/index.html?x=1", headers=BROWSER)
    assert page.status_code == 302
    assert page.headers["Location"] == "/.auth/login/aad?post_login_redirect_uri=%2Fstatic-files%2Findex.html%3Fx%3D1"
    xhr = get(site, "/ajax-api/2.0/mlflow/experiments/search",
              headers={**BROWSER, "X-Requested-With": "XMLHttpRequest"})
    assert xhr.status_code == 401
    posted = requests.post(site.url + "/api/2.0/mlflow/runs/create", json={}, headers=BROWSER, timeout=10,
                           allow_redirects=False)
    assert posted.status_code == 401
    assert [e["outcome"] for e in standin.auth_requests(site.app.id)] == ["unauthenticated"] * 4


@pytest.mark.parametrize("action, status", [("Return401", 401), ("Return403", 403), ("AllowAnonymous", 200)])
def test_unauthenticated_client_action(azure, site, action, status):
    configure(azure, site, action=action)
    assert get(site, "/api/2.0/mlflow/server-info", headers=BROWSER).status_code == status


def test_excluded_path_passes_without_a_token(standin, azure, site):
    configure(azure, site)
    assert get(site, "/health").text == "OK"
    assert get(site, "/health/").status_code == 401          # exact match only
    assert standin.auth_requests()[0]["outcome"] == "excluded"


# -- bearer tokens -------------------------------------------------------------------------------------
def test_valid_tokens_for_either_audience_and_both_issuers(standin, azure, site):
    configure(azure, site)
    for aud in (f"api://{site.client_id}", site.client_id):
        assert get(site, INFO, headers=bearer(token(standin, site, aud=aud))).status_code == 200
    v1 = token(standin, site, iss=f"https://sts.windows.net/{site.tenant}/")
    assert get(site, "/api/2.0/mlflow/server-info", headers=bearer(v1)).status_code == 200
    log = standin.auth_requests(site.app.id)
    assert {(e["outcome"], e["principal"]) for e in log} == {("authenticated", site.user)}
    assert v1 not in json.dumps(log)


@pytest.mark.parametrize("case", ["forged", "expired", "not_yet", "audience", "issuer", "tenant"])
def test_invalid_tokens_get_401(standin, azure, site, case):
    configure(azure, site)
    good = token(standin, site)
    bad = {"forged": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
           "expired": token(standin, site, lifetime=-5),
           "not_yet": token(standin, site, nbf=int(time.time()) + 300),
           "audience": token(standin, site, aud="https://management.core.windows.net/"),
           "issuer": token(standin, site, iss=f"{standin.url}/{uuid.uuid4()}/v2.0"),
           "tenant": token(standin, site, tid=str(uuid.uuid4()))}[case]
    answer = get(site, "/api/2.0/mlflow/server-info", headers=bearer(bad))
    assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert standin.auth_requests()[-1]["outcome"] == "invalid_token"


def test_allowed_principals_identities_and_groups(standin, azure, site):
    configure(azure, site, groups=[site.group_id])
    stranger = str(uuid.uuid4())
    assert get(site, INFO, headers=bearer(token(standin, site, oid=stranger))).status_code == 403
    member = token(standin, site, oid=stranger, groups=[site.group_id])
    assert get(site, "/api/2.0/mlflow/server-info", headers=bearer(member)).status_code == 200
    assert standin.auth_requests()[0]["outcome"] == "forbidden"
    configure(azure, site, identities=[])       # negative control: no policy, any token of the tenant passes
    assert get(site, INFO, headers=bearer(token(standin, site, oid=stranger))).status_code == 200


def test_allowed_applications(standin, azure, site):
    configure(azure, site, identities=[], policy={"allowedApplications": ["1950a258-227b-4e31-a9cf-717495945fc2"]})
    assert get(site, "/", headers=bearer(token(standin, site))).status_code == 403
    allowed = token(standin, site, appid=None, azp="1950a258-227b-4e31-a9cf-717495945fc2")
    assert get(site, "/api/2.0/mlflow/server-info", headers=bearer(allowed)).status_code == 200


# -- a real backend behind the layer ---------------------------------------------------------------------
def test_backend_sees_the_principal_and_never_a_forged_one(standin, azure, site, backend):
    forged = {"X-MS-CLIENT-PRINCIPAL-ID": "attacker", "X-MS-CLIENT-PRINCIPAL-NAME": "root",
              "X-MS-TOKEN-AAD-ID-TOKEN": "x"}
    assert get(site, "/open", headers=forged).json()["ms"]["x-ms-client-principal-id"] == "attacker"   # no layer yet
    configure(azure, site, action="AllowAnonymous")
    anonymous = get(site, "/open", headers=forged).json()
    assert anonymous["ms"] == {} and anonymous["host"] == site.fqdn
    configure(azure, site)
    seen = get(site, "/api/2.0/mlflow/experiments/search?max_results=1",
               headers={**forged, **bearer(token(standin, site))}).json()
    assert seen["path"] == "/api/2.0/mlflow/experiments/search?max_results=1"
    assert seen["ms"]["x-ms-client-principal-id"] == site.user
    assert seen["ms"]["x-ms-client-principal-name"] == "ada@contoso.example"
    assert seen["ms"]["x-ms-client-principal-idp"] == "aad"
    assert "x-ms-token-aad-id-token" not in seen["ms"]
    assert get(site, "/api/2.0/mlflow/experiments/search", headers=forged).status_code == 401


def test_bodies_both_ways_and_a_config_change_on_an_open_connection(standin, azure, site, backend):
    session = requests.Session()
    assert session.get(site.url + "/before", timeout=10).status_code == 200      # opens a pooled tunnel
    configure(azure, site)
    assert session.get(site.url + "/before", timeout=10).status_code == 401      # same connection, now checked
    auth = bearer(token(standin, site))
    put = session.put(site.url + "/big", data=BIG, headers=auth, timeout=30).json()
    assert (put["size"], put["sha256"]) == (len(BIG), hashlib.sha256(BIG).hexdigest())
    chunked = session.put(site.url + "/chunked", data=iter([BIG[:1000], BIG[1000:]]), headers=auth, timeout=30).json()
    assert chunked["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert session.get(site.url + "/big", headers=auth, timeout=30).content == BIG


# -- the browser sign-in ---------------------------------------------------------------------------------
def _start_sign_in(site, browser, path="/static-files/index.html"):
    first = browser.get(site.url + path, headers=BROWSER, timeout=10, allow_redirects=False)
    login = browser.get(site.url + first.headers["Location"], headers=BROWSER, timeout=10, allow_redirects=False)
    assert login.status_code == 302
    return login


def _callback(site, browser, id_token, state):
    return browser.post(site.url + "/.auth/login/aad/callback", data={"id_token": id_token, "state": state},
                        timeout=10, allow_redirects=False)


def test_browser_sign_in_with_the_implicit_flow(standin, azure, site, backend):
    configure(azure, site, login={"tokenStore": {"enabled": True}})
    browser = requests.Session()
    login = _start_sign_in(site, browser)
    target = urlsplit(login.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{standin.url}/{site.tenant}/oauth2/v2.0/authorize"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["client_id"] == site.client_id and query["response_type"] == "id_token"
    assert query["response_mode"] == "form_post" and "openid" in query["scope"].split()
    assert query["redirect_uri"] == f"https://{site.fqdn}/.auth/login/aad/callback"
    id_token = token(standin, site, aud=site.client_id, nonce=query["nonce"])
    done = _callback(site, browser, id_token, query["state"])
    assert done.status_code == 302 and done.headers["Location"] == "/static-files/index.html"
    cookie = re.search(r"AppServiceAuthSession=[^;]+;[^,]*", done.headers["Set-Cookie"]).group(0)
    assert "HttpOnly" in cookie and "Secure" in cookie and id_token not in cookie
    seen = browser.get(site.url + "/ajax-api/2.0/mlflow/experiments/search", timeout=10).json()
    assert seen["ms"]["x-ms-client-principal-id"] == site.user
    me = browser.get(site.url + "/.auth/me", timeout=10).json()
    assert {c["typ"]: c["val"] for c in me[0]["user_claims"]}["oid"] == site.user
    assert _callback(site, browser, id_token, query["state"]).status_code == 401     # a state is used once
    out = browser.get(site.url + "/.auth/logout", timeout=10, allow_redirects=False)
    assert out.headers["Location"] == "/.auth/logout/done"
    assert browser.get(site.url + "/x", headers=BROWSER, timeout=10, allow_redirects=False).status_code == 302
    outcomes = [e["outcome"] for e in standin.auth_requests()]
    assert outcomes[:4] == ["unauthenticated", "login", "callback", "authenticated"]
    assert id_token not in json.dumps(standin.auth_requests())


@pytest.mark.parametrize("case, status", [("nonce", 401), ("audience", 401), ("other_browser", 401),
                                          ("not_allowed", 403), ("expired", 401)])
def test_browser_callback_refusals(standin, azure, site, case, status):
    configure(azure, site)
    browser = requests.Session()
    query = {k: v[0] for k, v in parse_qs(urlsplit(_start_sign_in(site, browser).headers["Location"]).query).items()}
    claims = {"aud": site.client_id, "nonce": query["nonce"]}
    claims.update({"nonce": {"nonce": "another"}, "audience": {"aud": f"api://{site.client_id}"},
                   "not_allowed": {"oid": str(uuid.uuid4())}, "expired": {"lifetime": -1}}.get(case, {}))
    poster = requests.Session() if case == "other_browser" else browser
    answer = _callback(site, poster, token(standin, site, **claims), query["state"])
    assert answer.status_code == status and "AppServiceAuthSession" not in answer.headers.get("Set-Cookie", "")
    assert browser.get(site.url + "/x", headers=BROWSER, timeout=10, allow_redirects=False).status_code == 302


def test_session_ends_with_the_id_token(standin, azure, site):
    configure(azure, site)
    browser = requests.Session()
    query = {k: v[0] for k, v in parse_qs(urlsplit(_start_sign_in(site, browser).headers["Location"]).query).items()}
    _callback(site, browser, token(standin, site, aud=site.client_id, nonce=query["nonce"], lifetime=2), query["state"])
    assert browser.get(site.url + "/api/2.0/mlflow/server-info", timeout=10).status_code == 200
    time.sleep(2.2)
    assert browser.get(site.url + "/api/2.0/mlflow/server-info", timeout=10).status_code == 401
    assert get(site, "/.auth/me").status_code == 404            # token store off: no /.auth/me


def test_login_refuses_foreign_redirects_and_issuers(standin, azure, site):
    configure(azure, site)
    assert get(site, "/.auth/login/aad?post_login_redirect_uri=https://evil.example/").status_code == 400
    assert get(site, "/.auth/login/aad?post_login_redirect_uri=//evil.example/").status_code == 400
    assert get(site, f"/.auth/login/aad?post_login_redirect_uri=https://{site.fqdn}/x").status_code == 302
    site.issuer = f"https://login.microsoftonline.com/{site.tenant}/v2.0"
    configure(azure, site)
    assert get(site, "/.auth/login/aad").status_code == 500   # metadata the stand-in cannot serve


def test_browser_sign_in_through_the_entra_sign_in_page(standin, azure, site, backend):
    """End to end with the stand-in's Entra side (entra/signin.py): the authorize page answers the
    form post the layer's callback takes."""
    callback = f"https://{site.fqdn}/.auth/login/aad/callback"
    registered = standin.register_application("mlflow-test", redirect_uris=[callback])
    site.client_id, site.user = registered["appId"], standin.add_directory_object("user", "Ada")
    standin.set_browser_user(site.user)
    configure(azure, site)
    browser = requests.Session()
    page = browser.get(_start_sign_in(site, browser).headers["Location"], timeout=10)   # the Entra page
    assert page.status_code == 200, page.text
    action = re.search(r'action="([^"]+)"', page.text).group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    assert action == callback and set(fields) == {"id_token", "state"}
    done = browser.post(action, data=fields, timeout=10, allow_redirects=False)
    assert done.status_code == 302, done.text
    seen = browser.get(site.url + done.headers["Location"], timeout=10).json()
    assert seen["ms"]["x-ms-client-principal-id"] == site.user
    standin.set_browser_user(standin.add_directory_object("user", "Mallory"))       # not in allowedPrincipals
    browser = requests.Session()
    page = browser.get(_start_sign_in(site, browser).headers["Location"], timeout=10)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    assert browser.post(callback, data=fields, timeout=10, allow_redirects=False).status_code == 403
