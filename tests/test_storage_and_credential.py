"""One reading of the guardrail's storage settings and one identity per worker (#12 "one of each",
#23 "one composition root")."""

from __future__ import annotations

import pytest

from guardrail import functions
from guardrail.credentials import AzureIdentity, StaticTokenCredential
from guardrail.gateway import arm_credential
from guardrail.settings import SettingsError, load_settings

MI = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-2222-3333-4444-555555555555"


def test_identity_based_storage_names_each_service_endpoint() -> None:
    storage = load_settings({"AzureWebJobsStorage__accountName": "stguardrail"}).storage
    assert storage.endpoint("table") == "https://stguardrail.table.core.windows.net"
    assert storage.endpoint("queue") == "https://stguardrail.queue.core.windows.net"
    assert storage.endpoint("blob") == "https://stguardrail.blob.core.windows.net"
    explicit = load_settings(
        {
            "AzureWebJobsStorage__accountName": "stguardrail",
            "AzureWebJobsStorage__queueServiceUri": "https://q.test",
        }
    ).storage
    assert explicit.endpoint("queue") == "https://q.test" and explicit.reaches("blob")


def test_a_connection_string_wins_and_nothing_means_none() -> None:
    both = load_settings(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "x1x"}
    ).storage
    assert both.connection_string == "UseDevelopmentStorage=true" and both.endpoint("table") is None
    assert both.reaches("queue")
    nothing = load_settings({}).storage
    assert nothing.endpoint("blob") is None and nothing.connection_string is None
    assert not nothing.reaches("table")


@pytest.mark.parametrize(
    "env",
    [
        {"AZURE_CLIENT_ID": MI},
        {"AzureWebJobsStorage__clientId": MI},
        {"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId={MI};Authorization=AAD"},
        {"AZURE_CLIENT_ID": MI, "AzureWebJobsStorage__clientId": MI.upper()},
    ],
)
def test_the_worker_has_one_identity_whichever_setting_names_it(env: dict[str, str]) -> None:
    assert load_settings(env).identity_client_id == MI or load_settings(env).identity_client_id == MI.upper()
    assert load_settings({}).identity_client_id is None


def test_two_settings_naming_different_identities_are_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="AzureWebJobsStorage__clientId: names another identity"):
        load_settings({"AZURE_CLIENT_ID": MI, "AzureWebJobsStorage__clientId": OTHER})


def test_the_composition_root_hands_every_client_the_one_identity() -> None:
    settings = load_settings(
        {
            "AZURE_CLIENT_ID": MI,
            "AzureWebJobsStorage__accountName": "stguardrail",
            "MONITOR_DCE_ENDPOINT": "https://dce.example",
            "MONITOR_DCR_IMMUTABLE_ID": "dcr-1",
        }
    )
    app = functions.build_app(settings)
    identity = app.credential
    assert isinstance(identity, AzureIdentity) and identity.client_id == MI
    guardrail = app.guardrail
    assert guardrail.gateway.credential is identity  # type: ignore[attr-defined]
    monitor = next(s for s in guardrail.finding_sinks if s.name == "monitor")
    assert monitor._credential is identity  # type: ignore[attr-defined]
    assert app.sweep_queue is not None and app.sweep_queue._credential is identity
    assert guardrail.observe.health is app.health and guardrail.observe.telemetry is app.telemetry
    assert guardrail.observe.finding_sinks == guardrail.finding_sinks
    app.close()


def test_a_static_arm_token_is_for_arm_alone() -> None:
    settings = load_settings({"ARM_CREDENTIAL": "static", "ARM_STATIC_TOKEN": "local"})
    identity = AzureIdentity()
    credential = arm_credential(settings.arm, identity)
    assert isinstance(credential, StaticTokenCredential)
    assert arm_credential(load_settings({}).arm, identity) is identity
