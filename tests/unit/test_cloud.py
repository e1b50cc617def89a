import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from mlflow_aca.cloud import KNOWN_CLOUDS, cloud_from_metadata, fetch_custom_cloud, resolve_cloud
from mlflow_aca.errors import ConfigError, OperationError

STACK = {
    "name": "AzureStackLab",
    "resourceManager": "https://management.lab.example/",
    "microsoftGraphResourceId": "https://graph.lab.example/",
    "authentication": {"loginEndpoint": "https://login.lab.example/",
                       "audiences": ["https://management.lab.example/abc"]},
    "suffixes": {"storage": "lab.example", "sqlServerHostname": ".sql.lab.example",
                 "acrLoginServer": "cr.lab.example", "keyVaultDns": "vault.lab.example"},
}


def test_named_clouds_carry_their_own_suffixes():
    public, china, gov = (KNOWN_CLOUDS[n] for n in ("AzureCloud", "AzureChinaCloud", "AzureUSGovernment"))
    assert public.blob_host("st1") == "st1.blob.core.windows.net"
    assert china.blob_host("st1") == "st1.blob.core.chinacloudapi.cn"
    assert gov.sql_host("s") == "s.database.usgovcloudapi.net"
    assert china.registry_login_server("ACR1") == "acr1.azurecr.cn"
    assert public.arm_scope == "https://management.core.windows.net/.default"
    assert gov.resource_manager == "https://management.usgovcloudapi.net/"


def test_metadata_list_picks_the_entry_for_the_endpoint():
    other = dict(STACK, name="Other", resourceManager="https://elsewhere.example/")
    cloud = cloud_from_metadata([other, STACK], "https://management.lab.example")
    assert cloud.name == "AzureStackLab" and cloud.custom
    assert cloud.storage_suffix == "lab.example"
    assert cloud.sql_host("srv") == "srv.sql.lab.example"  # the leading dot is normalised
    assert cloud.registry_login_server("reg") == "reg.cr.lab.example"
    assert cloud.arm_scope == "https://management.lab.example/abc/.default"
    assert cloud.authority_host == "https://login.lab.example"


def test_metadata_single_object_is_accepted():
    assert cloud_from_metadata(STACK, "https://anything.example").name == "AzureStackLab"


def test_metadata_missing_fields_is_a_clear_error():
    broken = {k: v for k, v in STACK.items() if k != "suffixes"}
    with pytest.raises(OperationError, match="lacks a required field") as raised:
        cloud_from_metadata(broken, "https://management.lab.example")
    assert raised.value.code == "CloudMetadataInvalid"


def test_unknown_named_cloud():
    with pytest.raises(ConfigError, match="Unknown cloud"):
        resolve_cloud("AzureGermanCloud", None)


@pytest.fixture
def metadata_server(tmp_path, monkeypatch):
    """A real HTTPS server with a private CA, trusted through REQUESTS_CA_BUNDLE as a user would."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    requests_seen = []
    document = {"body": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            requests_seen.append(self.path)
            body = json.dumps(document["body"]).encode()
            self.send_response(200 if document["body"] is not None else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    endpoint = f"https://127.0.0.1:{server.server_address[1]}"
    yield endpoint, document, requests_seen
    server.shutdown()


def test_custom_cloud_is_read_from_its_metadata_endpoint(metadata_server):
    endpoint, document, seen = metadata_server
    document["body"] = [dict(STACK, resourceManager=endpoint + "/")]
    cloud = fetch_custom_cloud(endpoint)
    assert seen == ["/metadata/endpoints?api-version=2022-09-01"]
    assert cloud.resource_manager == endpoint + "/"
    assert cloud.sql_suffix == "sql.lab.example"


def test_custom_cloud_server_error(metadata_server):
    endpoint, _document, _seen = metadata_server
    with pytest.raises(OperationError, match="Could not read the cloud metadata") as raised:
        fetch_custom_cloud(endpoint)
    assert raised.value.code == "CloudMetadataUnreachable"


def test_custom_cloud_with_untrusted_certificate(metadata_server, monkeypatch):
    endpoint, document, _seen = metadata_server
    document["body"] = STACK
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    with pytest.raises(OperationError, match="TLS verification failed") as raised:
        fetch_custom_cloud(endpoint)
    assert "REQUESTS_CA_BUNDLE" in raised.value.hint


# --- a custom cloud may not claim Microsoft's clouds (issue 12, item 3) ---------------------------
# Each value is one a public or sovereign cloud uses: azure-cli core/cloud.py (AZURE_PUBLIC_CLOUD,
# AZURE_US_GOV_CLOUD, AZURE_CHINA_CLOUD: management, resource_manager, active_directory,
# microsoft_graph_resource_id) and msal authority.py WELL_KNOWN_AUTHORITY_HOSTS (login aliases).
def _claiming(**claims):
    entry = json.loads(json.dumps(STACK))
    auth = entry["authentication"]
    for key, value in claims.items():
        if key in ("loginEndpoint", "audiences"):
            auth[key] = value
        else:
            entry[key] = value
    return entry


HOSTILE = {
    "AzureCloud ARM audience": _claiming(audiences=["https://management.core.windows.net/"]),
    "AzureCloud ARM audience, no slash": _claiming(audiences=["https://management.core.windows.net"]),
    "AzureCloud ARM URL as audience": _claiming(audiences=["https://MANAGEMENT.azure.com/"]),
    "listed second": _claiming(audiences=["https://management.lab.example/", "https://management.azure.com/"]),
    "AzureUSGovernment ARM audience": _claiming(audiences=["https://management.core.usgovcloudapi.net/"]),
    "AzureChinaCloud ARM audience": _claiming(audiences=["https://management.core.chinacloudapi.cn/"]),
    "another Microsoft service": _claiming(audiences=["https://vault.azure.net"]),
    "ARM's application id": _claiming(audiences=["797f4846-ba00-4fd7-ba43-dac1f8f63013"]),
    "AzureCloud login": _claiming(loginEndpoint="https://login.microsoftonline.com/"),
    "AzureCloud login alias": _claiming(loginEndpoint="https://login.windows.net"),
    "AzureUSGovernment login": _claiming(loginEndpoint="https://login.microsoftonline.us"),
    "AzureChinaCloud login": _claiming(loginEndpoint="https://login.chinacloudapi.cn"),
    "AzureChinaCloud login alias": _claiming(loginEndpoint="https://login.partner.microsoftonline.cn"),
    "AzureCloud Graph": _claiming(microsoftGraphResourceId="https://graph.microsoft.com/"),
    "AzureUSGovernment Graph": _claiming(microsoftGraphResourceId="https://graph.microsoft.us/"),
    "AzureChinaCloud Graph": _claiming(microsoftGraphResourceId="https://microsoftgraph.chinacloudapi.cn"),
    "plain http audience": _claiming(audiences=["http://management.lab.example/"]),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_custom_cloud_claiming_a_microsoft_cloud_is_refused(case):
    with pytest.raises(ConfigError) as raised:
        cloud_from_metadata(HOSTILE[case], "https://management.lab.example")
    assert raised.value.code == "CloudMetadataRefused"
    assert "before any token is requested" in raised.value.message


def test_a_storage_website_cannot_pose_as_a_custom_cloud():
    """<account>.web.core.windows.net serves anyone's files: a Microsoft domain is refused as
    Resource Manager too, whoever hosts it."""
    site = "https://evil.z6.web.core.windows.net"
    with pytest.raises(ConfigError, match="AzureCloud"):
        cloud_from_metadata(_claiming(resourceManager=site + "/"), site)


def test_a_custom_cloud_must_name_its_graph():
    entry = {k: v for k, v in STACK.items() if k != "microsoftGraphResourceId"}
    with pytest.raises(OperationError, match="microsoftGraphResourceId") as raised:
        cloud_from_metadata(entry, "https://management.lab.example")
    assert raised.value.code == "CloudMetadataInvalid"


def test_registry_tokens_go_only_to_microsofts_registry_hosts():
    """The registry audience is Microsoft's: a custom cloud's own registry domain gets none."""
    own = cloud_from_metadata(STACK, "https://management.lab.example")
    with pytest.raises(ConfigError, match="cr.lab.example") as raised:
        own.registry_scope
    assert raised.value.code == "CloudMetadataRefused"
    microsoft = cloud_from_metadata(_claiming(suffixes=dict(STACK["suffixes"], acrLoginServer=".azurecr.io")),
                                    "https://management.lab.example")
    assert microsoft.registry_scope == "https://containerregistry.azure.net/.default"


def test_arm_endpoint_of_a_named_cloud_uses_the_table_without_fetching():
    """Pointing arm_endpoint at real ARM reads no metadata (whose audience would be refused)."""
    assert resolve_cloud("AzureCloud", "https://management.usgovcloudapi.net") is KNOWN_CLOUDS["AzureUSGovernment"]
    assert resolve_cloud("AzureCloud", "https://Management.Azure.com/") is KNOWN_CLOUDS["AzureCloud"]


def test_hostile_metadata_endpoint_is_refused_after_one_unauthenticated_read(metadata_server):
    endpoint, document, seen = metadata_server
    document["body"] = [dict(HOSTILE["AzureCloud ARM audience"], resourceManager=endpoint + "/")]
    with pytest.raises(ConfigError, match="management.core.windows.net"):
        resolve_cloud("AzureCloud", endpoint)
    assert seen == ["/metadata/endpoints?api-version=2022-09-01"]
