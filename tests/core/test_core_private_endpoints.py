"""private-endpoint-not-allowed (#14): both edges of the rule, and its rejections beside (never in)
the PATCH body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guardrail.engine import widening

from ._factory import NOW, OTHER_SUB, SUB, account, account_id, judge, policy, rules_of

FOREIGN = "bbbbbbbb-1111-2222-3333-444444444444"


def pe_id(sub: str = FOREIGN, name: str = "pe1") -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg-pe/providers/Microsoft.Network/privateEndpoints/{name}"


def connection(
    status: str = "Approved", endpoint: Any = None, name: str = "c1", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{account_id()}/privateEndpointConnections/{name}",
        "name": name,
        "type": "Microsoft.CognitiveServices/accounts/privateEndpointConnections",
        "properties": {
            "privateEndpoint": {"id": pe_id() if endpoint is None else endpoint},
            "privateLinkServiceConnectionState": {
                "status": status,
                "description": "",
                "actionsRequired": "None",
            },
            "provisioningState": "Succeeded",
        },
    }
    body.update(extra)
    return body


def with_connections(*connections: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    body = account(**kwargs)
    body["properties"]["privateEndpointConnections"] = list(connections)
    return body


ALLOWED = policy(network={"allowed_private_endpoint_subscriptions": [SUB]})


@pytest.mark.parametrize("status", ["Approved", "Pending", "approved", "PENDING"])
def test_a_foreign_approved_or_pending_connection_is_rejected(status: str) -> None:
    result = judge(with_connections(connection(status)), ALLOWED)
    assert rules_of(result) == ["private-endpoint-not-allowed"]
    finding = result.findings[0]
    assert finding.severity == "high" and finding.fixed and finding.value == pe_id()
    assert FOREIGN in finding.message
    assert result.private_endpoint_rejections == (f"{account_id()}/privateEndpointConnections/c1",)
    assert result.remediation is None  # rejections are not part of the PATCH body
    assert not result.compliant
    line = result.to_json()
    assert line["remediation"] is None
    assert line["private_endpoint_rejections"] == [f"{account_id()}/privateEndpointConnections/c1"]


@pytest.mark.parametrize("status", ["Rejected", "Disconnected", "rejected", "Other"])
def test_a_connection_that_is_not_approved_or_pending_is_left_alone(status: str) -> None:
    result = judge(with_connections(connection(status)), ALLOWED)
    assert result.findings == () and result.private_endpoint_rejections == ()


@pytest.mark.parametrize("sub", [SUB, SUB.upper()])
def test_an_endpoint_in_an_allowed_subscription_is_fine(sub: str) -> None:
    assert judge(with_connections(connection(endpoint=pe_id(sub=sub))), ALLOWED).findings == ()
    upper = policy(network={"allowed_private_endpoint_subscriptions": [SUB.upper()]})
    assert judge(with_connections(connection(endpoint=pe_id(sub=sub.lower()))), upper).findings == ()


@pytest.mark.parametrize(
    "endpoint", ["", "not-an-id", f"/subscriptions/{SUB}", f"/subscriptions/{SUB}/resourceGroups/rg/x", 7]
)
def test_an_unparsable_endpoint_is_not_allowed(endpoint: object) -> None:
    result = judge(with_connections(connection(endpoint=endpoint)), ALLOWED)
    assert rules_of(result) == ["private-endpoint-not-allowed"]
    assert result.private_endpoint_rejections


def test_the_rule_is_off_without_allowed_subscriptions() -> None:
    assert judge(with_connections(connection())).findings == ()


def test_mixed_connections_reject_only_the_foreign_ones() -> None:
    body = with_connections(
        connection(endpoint=pe_id(sub=SUB), name="mine"),
        connection(name="theirs"),
        connection(endpoint=pe_id(sub=OTHER_SUB), name="other", status="Pending"),
        connection(name="gone", status="Rejected"),
    )
    two = policy(network={"allowed_private_endpoint_subscriptions": [SUB]})
    result = judge(body, two)
    assert [c.rsplit("/", 1)[1] for c in result.private_endpoint_rejections] == ["theirs", "other"]


def test_exempted_connections_are_recorded_but_not_rejected() -> None:
    pol = policy(
        network={"allowed_private_endpoint_subscriptions": [SUB]},
        exemptions=[
            {"scope": account_id(), "rules": ["private-endpoint-not-allowed"], "expires": "2027-01-01"}
        ],
    )
    result = judge(with_connections(connection()), pol)
    assert [(f.rule, f.exempted, f.fixed) for f in result.findings] == [
        ("private-endpoint-not-allowed", True, False)
    ]
    assert result.private_endpoint_rejections == () and result.compliant


def test_report_only_when_the_fix_is_off() -> None:
    pol = policy(
        network={"allowed_private_endpoint_subscriptions": [SUB]},
        remediate={"private-endpoint-not-allowed": False},
    )
    result = judge(with_connections(connection()), pol)
    assert [(f.rule, f.fixed) for f in result.findings] == [("private-endpoint-not-allowed", False)]
    assert result.private_endpoint_rejections == ()


def test_fixed_by_default() -> None:
    assert ALLOWED.remediates("private-endpoint-not-allowed")


def test_a_connection_without_an_id_is_rejected_by_its_name() -> None:
    entry = connection()
    del entry["id"]
    result = judge(with_connections(entry), ALLOWED)
    assert result.private_endpoint_rejections == (f"{account_id()}/privateEndpointConnections/c1",)


@pytest.mark.parametrize(
    "given",
    [
        f"{account_id(name='another')}/privateEndpointConnections/c1",  # another account's connection
        f"{account_id()}/privateEndpointConnections/c1/more",
        f"{account_id()}/privateEndpointConnections/",
        None,  # and no name either
    ],
)
def test_a_connection_that_is_not_this_accounts_child_is_reported_but_never_written(given: object) -> None:
    entry = connection(id=given)
    if given is None:
        del entry["name"]
    result = judge(with_connections(entry), ALLOWED)
    assert rules_of(result) == ["private-endpoint-not-allowed"]
    assert not result.findings[0].fixed and "cannot be rejected" in result.findings[0].message
    assert result.private_endpoint_rejections == ()


def test_the_account_id_case_does_not_matter_for_the_connection() -> None:
    entry = connection(id=f"{account_id().upper()}/privateEndpointConnections/c1")
    assert judge(with_connections(entry), ALLOWED).private_endpoint_rejections == (entry["id"],)


def test_a_new_approved_endpoint_is_widening_and_a_rejection_is_not() -> None:
    before = with_connections(connection(endpoint=pe_id(sub=SUB)))
    after = with_connections(connection(endpoint=pe_id(sub=SUB)), connection(name="c2"))
    assert widening(before, after) == [f"private endpoint {pe_id().lower()} connected"]
    assert widening(after, before) == []
    pending = with_connections(connection(endpoint=pe_id(sub=SUB)), connection(name="c2", status="Pending"))
    assert widening(before, pending) != []
    rejected = with_connections(connection(endpoint=pe_id(sub=SUB)), connection(name="c2", status="Rejected"))
    assert widening(after, rejected) == []
    assert widening(rejected, after) != []


def test_private_endpoints_count_even_when_public_access_is_disabled() -> None:
    before = with_connections(public="Disabled")
    after = with_connections(connection(), public="Disabled")
    assert widening(before, after) == [f"private endpoint {pe_id().lower()} connected"]


@pytest.mark.parametrize("value", ["x", {}, 3])
def test_connections_that_are_not_a_list_make_the_body_invalid(value: object) -> None:
    from guardrail.engine import InvalidAccount, evaluate

    body = account()
    body["properties"]["privateEndpointConnections"] = value
    result = evaluate(body, ALLOWED, NOW)
    assert isinstance(result, InvalidAccount) and "privateEndpointConnections" in result.message


def test_the_cli_prints_the_rejections(tmp_path: Path) -> None:
    from .test_core_cli import run, write

    pol = tmp_path / "p.yaml"
    pol.write_text(
        f"version: 1\nnetwork:\n  allowed_private_endpoint_subscriptions: [{SUB}]\n", encoding="utf-8"
    )
    path = write(tmp_path, "a.json", with_connections(connection()))
    code, out, _ = run("evaluate", "--policy", str(pol), "--format", "json", path)
    assert code == 1
    line = json.loads(out)
    assert line["remediation"] is None and line["compliant"] is False
    assert line["private_endpoint_rejections"] == [f"{account_id()}/privateEndpointConnections/c1"]
    code, out, _ = run("evaluate", "--policy", str(pol), path)
    assert code == 1
    assert "private-endpoint-not-allowed" in out and "fix" in out
    assert "0 with a remediation, 1 with private endpoint connections to reject" in out


def test_a_connection_listed_twice_is_rejected_once() -> None:
    twice = with_connections(
        connection(), connection(id=f"{account_id().upper()}/privateEndpointConnections/c1")
    )
    result = judge(twice, ALLOWED)
    assert len(result.findings) == 2
    assert result.private_endpoint_rejections == (f"{account_id()}/privateEndpointConnections/c1",)
