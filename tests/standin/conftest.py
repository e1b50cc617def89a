"""Fixtures of the stand-in's own tests: the plugin's fixtures plus SDK clients and a few resources."""

from types import SimpleNamespace

import pytest

from tests.standin.fixtures import *  # noqa: F401,F403 - the plugin's fixtures

LOCATION = "westeurope"


@pytest.fixture
def azure(standin, standin_env, arm_kwargs):
    """The real SDK clients with an unmodified DefaultAzureCredential, pointed at the stand-in."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.appcontainers import ContainerAppsAPIClient
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.loganalytics import LogAnalyticsManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.sql import SqlManagementClient
    from azure.mgmt.storage import StorageManagementClient

    credential = DefaultAzureCredential()
    sub = standin.subscription_id
    return SimpleNamespace(
        credential=credential, subscription_id=sub, kwargs=arm_kwargs,
        resources=ResourceManagementClient(credential, sub, **arm_kwargs),
        msi=ManagedServiceIdentityClient(credential, sub, **arm_kwargs),
        logs=LogAnalyticsManagementClient(credential, sub, **arm_kwargs),
        storage=StorageManagementClient(credential, sub, **arm_kwargs),
        acr=ContainerRegistryManagementClient(credential, sub, **arm_kwargs),
        sql=SqlManagementClient(credential, sub, **arm_kwargs),
        aca=ContainerAppsAPIClient(credential, sub, **arm_kwargs),
        auth=AuthorizationManagementClient(credential, sub, **arm_kwargs),
    )


@pytest.fixture
def group(azure):
    """A resource group with a user-assigned identity in it."""
    rg = azure.resources.resource_groups.create_or_update("rg-test", {"location": LOCATION})
    identity = azure.msi.user_assigned_identities.create_or_update("rg-test", "id-mlflow", {"location": LOCATION})
    return SimpleNamespace(name=rg.name, id=rg.id, identity=identity)


@pytest.fixture
def env(azure, group):
    """A Log Analytics workspace and a Container Apps environment logging to it."""
    from azure.mgmt.appcontainers.models import AppLogsConfiguration, LogAnalyticsConfiguration, ManagedEnvironment
    workspace = azure.logs.workspaces.begin_create_or_update(
        group.name, "log-mlflow", {"location": LOCATION, "properties": {"sku": {"name": "PerGB2018"}}}).result()
    key = azure.logs.shared_keys.get_shared_keys(group.name, "log-mlflow").primary_shared_key
    logs = AppLogsConfiguration(destination="log-analytics", log_analytics_configuration=LogAnalyticsConfiguration(
        customer_id=workspace.customer_id, shared_key=key))
    environment = azure.aca.managed_environments.begin_create_or_update(
        group.name, "cae-mlflow", ManagedEnvironment(location=LOCATION, app_logs_configuration=logs)).result()
    environment.workspace_key = key
    return environment


def app_body(group, env, *, image="acrmlflow01.azurecr.io/mlflow:1", secrets=None, env_vars=None, **config):
    """A container app as mlflow-aca builds it: identity, ingress, registry via identity, secrets by reference."""
    identity_id = group.identity.id
    return {
        "location": LOCATION,
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
        "properties": {
            "managedEnvironmentId": env.id,
            "configuration": {
                "activeRevisionsMode": "Single",
                "ingress": {"external": True, "targetPort": 5000, "allowInsecure": False,
                            **config.pop("ingress", {})},
                "secrets": secrets if secrets is not None else [{"name": "backend-uri", "value": "mssql+pyodbc://x"}],
                "registries": [{"server": "acrmlflow01.azurecr.io", "identity": identity_id}],
                **config,
            },
            "template": {
                "containers": [{
                    "name": "mlflow", "image": image, "command": ["mlflow", "server"],
                    "env": env_vars if env_vars is not None else [
                        {"name": "MLFLOW_BACKEND_STORE_URI", "secretRef": "backend-uri"},
                        {"name": "AZURE_CLIENT_ID", "value": group.identity.client_id}],
                    "resources": {"cpu": 1.0, "memory": "2Gi"},
                    "probes": [{"type": "Liveness", "httpGet": {"path": "/health", "port": 5000}},
                               {"type": "Readiness", "httpGet": {"path": "/health", "port": 5000}}],
                }],
                "scale": {"minReplicas": 1, "maxReplicas": 1},
            },
        },
    }
