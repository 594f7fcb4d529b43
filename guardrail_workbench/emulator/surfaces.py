"""The ARM surfaces generic clients call before they touch a resource: the cloud's metadata
endpoints (`az cloud register` discovers a cloud from them) and the providers API (`az resource`
and Cloud Custodian look API versions up there)."""

from __future__ import annotations

from typing import Any

LOCATIONS = ["West US", "East US", "West Europe", "North Europe", "Sweden Central", "Global"]

#: Newest first, as ARM lists them (clients take the first stable one).
COGNITIVE_API_VERSIONS = [
    "2026-09-01",
    "2025-09-01",
    "2025-06-01",
    "2024-10-01",
    "2023-10-01-preview",
    "2023-05-01",
    "2022-12-01",
    "2017-04-18",
]
NETWORK_API_VERSIONS = ["2024-05-01", "2024-03-01", "2023-11-01", "2023-09-01", "2022-07-01"]
INSIGHTS_API_VERSIONS = ["2021-05-01-preview", "2017-05-01-preview"]

_PROVIDERS: dict[str, list[tuple[str, list[str]]]] = {
    "Microsoft.CognitiveServices": [
        ("accounts", COGNITIVE_API_VERSIONS),
        ("accounts/privateEndpointConnections", COGNITIVE_API_VERSIONS),
        ("deletedAccounts", COGNITIVE_API_VERSIONS),
        ("locations", COGNITIVE_API_VERSIONS),
        ("locations/operationResults", COGNITIVE_API_VERSIONS),
        ("locations/resourceGroups/deletedAccounts", COGNITIVE_API_VERSIONS),
        ("operations", COGNITIVE_API_VERSIONS),
    ],
    "Microsoft.Network": [
        ("virtualNetworks", NETWORK_API_VERSIONS),
        ("virtualNetworks/subnets", NETWORK_API_VERSIONS),
        ("privateEndpoints", NETWORK_API_VERSIONS),
    ],
    "Microsoft.Insights": [("diagnosticSettings", INSIGHTS_API_VERSIONS)],
    "Microsoft.Resources": [("tags", ["2021-04-01", "2019-10-01"])],
    "Microsoft.Authorization": [("locks", ["2020-05-01", "2016-09-01"])],
}


def provider(subscription: str, namespace: str) -> dict[str, Any]:
    """`GET /subscriptions/{s}/providers/{namespace}` (404 InvalidResourceNamespace when unknown)."""
    from .arm import ArmError

    for name, types in _PROVIDERS.items():
        if name.lower() == namespace.lower():
            return {
                "id": f"/subscriptions/{subscription}/providers/{name}",
                "namespace": name,
                "registrationState": "Registered",
                "registrationPolicy": "RegistrationRequired",
                "resourceTypes": [
                    {
                        "resourceType": resource_type,
                        "locations": list(LOCATIONS),
                        "apiVersions": list(versions),
                        "defaultApiVersion": next((v for v in versions if "preview" not in v), versions[0]),
                        "capabilities": "None",
                    }
                    for resource_type, versions in types
                ],
            }
    raise ArmError(
        404,
        "InvalidResourceNamespace",
        f"The resource namespace '{namespace}' is invalid.",
    )


def providers(subscription: str) -> list[dict[str, Any]]:
    return [provider(subscription, name) for name in _PROVIDERS]


def metadata_endpoints(base_url: str, tenant_id: str) -> dict[str, Any]:
    """`GET /metadata/endpoints` (served without authentication, like ARM): this emulator as a cloud.

    The token audience stays `https://management.core.windows.net/`, so tokens asked for the
    public cloud's ARM work here too."""
    arm = base_url.rstrip("/") + "/"
    return {
        "gallery": arm,
        "graph": "https://graph.windows.net/",
        "portal": "https://portal.azure.com/",
        "graphAudience": "https://graph.windows.net/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "name": "AzureEmulator",
        "resourceManager": arm,
        "authentication": {
            "loginEndpoint": "https://login.microsoftonline.com/",
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {
            "storage": "core.windows.net",
            "keyVaultDns": "vault.azure.net",
            "sqlServerHostname": "database.windows.net",
            "acrLoginServer": "azurecr.io",
            "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
            "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
        },
        "batch": "https://batch.core.windows.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/arm-compute/quickstart-templates/aliases.json",
        "tenantId": tenant_id,
    }
