"""A configuration file cannot turn the tool against its operator (issue 12, item 3).

`arm_endpoint` decides where the operator's credential signs in and where its tokens go, and the
token audience is read from that endpoint's own metadata. A hostile metadata server here (real
HTTPS, its own CA) claims a public or sovereign cloud's audience, login endpoint or Graph; the
operator's credential is the stand-in's identity endpoint (IDENTITY_ENDPOINT, as
DefaultAzureCredential finds it). The tool must refuse before asking that endpoint for any token,
and a file-set arm_endpoint is shown in a warning first.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from tests.clirunner import run_cli


class HostileCloud:
    """Serves a cloud metadata document and answers everything else like ARM's 404, recording
    each request and whether it carried a bearer token (never the token itself)."""

    def __init__(self, ca: trustme.CA) -> None:
        self.document: Any = None
        self.seen: list[dict[str, Any]] = []
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hostile.seen.append({"method": self.command, "path": self.path,
                                     "bearer": "authorization" in {k.lower() for k in self.headers}})
                found = self.path.startswith("/metadata/endpoints")
                body = json.dumps(hostile.document if found else
                                  {"error": {"code": "NotFound", "message": "nothing here"}}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _answer  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def describe(self, standin_url: str, **claims: Any) -> None:
        """A document that is this server's own cloud except for `claims`; its login endpoint is
        the stand-in, so a credential that honours the authority reaches a logged endpoint too."""
        auth = {"loginEndpoint": standin_url + "/", "audiences": [self.url + "/arm"],
                "tenant": "common", "identityProvider": "AAD"}
        auth.update({k: v for k, v in claims.items() if k in ("loginEndpoint", "audiences")})
        entry = {"name": "Hostile", "resourceManager": self.url + "/", "authentication": auth,
                 "microsoftGraphResourceId": claims.get("graph", self.url + "/graph/"),
                 "suffixes": {"storage": "core.windows.net", "sqlServerHostname": "database.windows.net",
                              "acrLoginServer": "azurecr.io"}}
        self.document = [entry]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def hostile(standin, tmp_path):
    ca = trustme.CA()
    server = HostileCloud(ca)
    # The operator trusts both (a private CA for the custom cloud, as REQUESTS_CA_BUNDLE allows).
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(open(standin.ca_path, "rb").read() + ca.cert_pem.bytes())
    yield server, str(bundle)
    server.close()


def _operator_env(standin, bundle: str | None = None) -> dict[str, str]:
    """The stand-in's client environment without MLFLOW_ACA_ARM_ENDPOINT: the file names it."""
    env = {k: v for k, v in standin.env().items() if k != "MLFLOW_ACA_ARM_ENDPOINT"}
    if bundle:
        env["REQUESTS_CA_BUNDLE"] = bundle
    return env


def _config(tmp_path, arm_endpoint: str | None) -> None:
    lines = ['name = "mlflow"', 'location = "westeurope"', "poll_interval = 0"]
    if arm_endpoint:
        lines.append(f'arm_endpoint = "{arm_endpoint}"')
    (tmp_path / "mlflow-aca.toml").write_text("\n".join(lines) + "\n")


HOSTILE_CLAIMS = {
    # AzureCloud's ARM audience (azure-cli cloud.py AZURE_PUBLIC_CLOUD.management)
    "public-arm-audience": {"audiences": ["https://management.core.windows.net/"]},
    # AzureUSGovernment's ARM audience (AZURE_US_GOV_CLOUD.management)
    "usgov-arm-audience": {"audiences": ["https://management.core.usgovcloudapi.net/"]},
    # AzureChinaCloud's login endpoint (AZURE_CHINA_CLOUD.active_directory)
    "china-login": {"loginEndpoint": "https://login.chinacloudapi.cn"},
    # the public cloud's Microsoft Graph (AZURE_PUBLIC_CLOUD.microsoft_graph_resource_id)
    "public-graph": {"graph": "https://graph.microsoft.com/"},
}


@pytest.mark.parametrize("claim", list(HOSTILE_CLAIMS))
def test_hostile_metadata_is_refused_before_any_token_is_requested(standin, hostile, tmp_path, claim):
    server, bundle = hostile
    server.describe(standin.url, **HOSTILE_CLAIMS[claim])
    _config(tmp_path, server.url)
    tokens_before = len(standin.identity_requests())

    result = run_cli("plan", "--json", cwd=tmp_path, env=_operator_env(standin, bundle))

    # No token was asked for, and nothing but the metadata document was fetched, without a token.
    assert server.seen == [{"method": "GET", "path": "/metadata/endpoints?api-version=2022-09-01",
                            "bearer": False}]
    assert [r["query"] for r in standin.identity_requests()[tokens_before:]] == []
    assert result.code == 1, result
    document = result.json
    assert document["ok"] is False and document["error"]["code"] == "CloudMetadataRefused", document
    # The file-set endpoint was named in a warning first: on stderr and in the envelope.
    assert server.url in document["warnings"][0] and "config file" in document["warnings"][0]
    assert result.stderr.startswith("Warning: arm_endpoint = " + server.url)


def test_refusal_for_people_names_the_claim_and_the_fix(standin, hostile, tmp_path):
    server, bundle = hostile
    server.describe(standin.url, **HOSTILE_CLAIMS["public-arm-audience"])
    _config(tmp_path, server.url)

    result = run_cli("plan", cwd=tmp_path, env=_operator_env(standin, bundle))

    assert result.code == 1, result
    warning, error = result.stderr.index("Warning: arm_endpoint"), result.stderr.index("Error:")
    assert warning < error
    assert "https://management.core.windows.net/" in result.stderr and "AzureCloud" in result.stderr
    assert "remove arm_endpoint and set cloud" in result.stderr
    assert "Traceback" not in result.stderr


def test_arm_endpoint_from_the_file_works_but_is_warned_about(standin, tmp_path):
    """The stand-in describes itself with its own audiences: accepted, with the file warning."""
    _config(tmp_path, standin.url)
    result = run_cli("plan", "--json", cwd=tmp_path, env=_operator_env(standin))
    assert result.code == 0, result
    assert result.json["ok"] is True
    assert len(result.json["warnings"]) == 1 and standin.url in result.json["warnings"][0]
    assert result.stderr.startswith("Warning: arm_endpoint = " + standin.url)
    assert len(standin.identity_requests()) > 0   # tokens were requested, after the warning


def test_arm_endpoint_from_the_environment_or_a_flag_is_not_warned_about(standin, tmp_path):
    _config(tmp_path, None)
    from_env = run_cli("plan", "--json", cwd=tmp_path, env=standin.env())
    from_flag = run_cli("plan", "--json", "--arm-endpoint", standin.url, cwd=tmp_path,
                        env=_operator_env(standin))
    for result in (from_env, from_flag):
        assert result.code == 0, result
        assert "warnings" not in result.json and "Warning:" not in result.stderr
