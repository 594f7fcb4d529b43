"""One reading of the guardrail's storage settings and one credential per worker (#12 "one of each")."""

from __future__ import annotations

from guardrail import storage
from guardrail.credentials import default_credential


def test_identity_based_storage_names_each_service_endpoint() -> None:
    env = {"AzureWebJobsStorage__accountName": "stguardrail"}
    assert storage.identity_endpoint(env, "table") == "https://stguardrail.table.core.windows.net"
    assert storage.identity_endpoint(env, "queue") == "https://stguardrail.queue.core.windows.net"
    assert storage.identity_endpoint(env, "blob") == "https://stguardrail.blob.core.windows.net"
    explicit = {**env, "AzureWebJobsStorage__queueServiceUri": "https://q.example.test"}
    assert storage.identity_endpoint(explicit, "queue") == "https://q.example.test"


def test_a_connection_string_wins_and_nothing_means_none() -> None:
    both = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "x"}
    assert storage.connection_string(both) == "UseDevelopmentStorage=true"
    assert storage.identity_endpoint(both, "table") is None
    assert storage.identity_endpoint({}, "blob") is None and storage.connection_string({}) is None


def test_the_storage_identity_is_the_hosts_client_id_first() -> None:
    assert storage.client_id({"AzureWebJobsStorage__clientId": "a", "AZURE_CLIENT_ID": "b"}) == "a"
    assert storage.client_id({"AZURE_CLIENT_ID": "b"}) == "b" and storage.client_id({}) is None


def test_one_default_credential_per_identity() -> None:
    assert default_credential() is default_credential()
    assert default_credential("11111111-2222-3333-4444-555555555555") is default_credential(
        "11111111-2222-3333-4444-555555555555"
    )
    assert default_credential("11111111-2222-3333-4444-555555555555") is not default_credential()
