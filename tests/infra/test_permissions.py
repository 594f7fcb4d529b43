"""The guardrail's custom role grants exactly the ARM actions guardrail/permissions.py lists (issue 18,
item 5): every call the gateway makes is covered, nothing broader, in main.bicep and mg.bicep, for
every combination of the optional features; and docs/deploying.md's table is that same list."""

from __future__ import annotations

import itertools
import re

import pytest

from guardrail.permissions import ARM_OPERATIONS, FEATURES, role_actions
from tests.infra.bicep import ROOT, body, evaluate_list, parse

FLAGS = {
    "diagnostics": "diagnosticsRemediation",
    "private-endpoints": "privateEndpointRemediation",
    "managed-network": "managedNetworkRemediation",
    "outbound-rules": "outboundRuleRemediation",
}


def expected_actions(enabled: dict[str, bool]) -> list[str]:
    actions = list(role_actions("base"))
    for feature, flag in FLAGS.items():
        if enabled[flag]:
            actions += role_actions(feature)  # type: ignore[arg-type]
    return actions


@pytest.mark.parametrize("template", ["main.bicep", "mg.bicep"])
@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=len(FLAGS))))
def test_role_actions_are_exactly_the_permissions_list(template: str, flags: tuple[bool, ...]) -> None:
    doc = parse(template)
    (permission,) = body(doc["resources"]["guardrailRole"])["properties"]["permissions"]
    enabled = dict(zip(FLAGS.values(), flags, strict=True))
    granted = evaluate_list(doc, permission["actions"], enabled)
    assert len(granted) == len(set(granted)), f"duplicate actions: {granted}"
    assert sorted(granted) == sorted(expected_actions(enabled))


def test_the_operation_status_read_the_lro_poller_needs_is_in_the_base_role() -> None:
    # A 202 from the PATCH makes azure-core poll the operation: without this the poll is a 403 and an
    # applied fix would be reported as failed.
    assert "Microsoft.CognitiveServices/locations/operationresults/read" in role_actions("base")


def test_every_feature_has_operations_and_unknown_features_are_refused() -> None:
    for feature in FEATURES:
        assert role_actions(feature)
    with pytest.raises(ValueError, match="unknown feature"):
        role_actions("everything")  # type: ignore[arg-type]


def test_private_endpoint_actions_are_flagged_for_the_private_endpoint_rule() -> None:
    flagged = [op for op in ARM_OPERATIONS if "privateEndpointConnections" in op.action]
    assert {op.action for op in flagged} == {
        "Microsoft.CognitiveServices/accounts/privateEndpointConnections/read",
        "Microsoft.CognitiveServices/accounts/privateEndpointConnections/write",
    }
    assert all(op.feature == "private-endpoints" for op in flagged)


CHILD_READS = {
    "Microsoft.CognitiveServices/accounts/managedNetworks/read",
    "Microsoft.CognitiveServices/accounts/managedNetworks/outboundRules/read",
    "Microsoft.CognitiveServices/accounts/capabilityHosts/read",
    "Microsoft.CognitiveServices/accounts/networkSecurityPerimeterConfigurations/read",
}


def test_the_agent_era_children_are_read_in_the_base_role_and_written_only_behind_their_flags() -> None:
    base = set(role_actions("base"))
    assert base >= CHILD_READS
    # The managed network's writes answer 202 with Azure-AsyncOperation at a Microsoft.MachineLearningServices
    # URL: without this the poll is a 403 and an applied fix would be reported as failed.
    assert "Microsoft.MachineLearningServices/locations/mfeOperationsStatus/read" in base
    assert role_actions("managed-network") == ("Microsoft.CognitiveServices/accounts/managedNetworks/write",)
    assert role_actions("outbound-rules") == (
        "Microsoft.CognitiveServices/accounts/managedNetworks/outboundRules/delete",
    )
    children = [op for op in ARM_OPERATIONS if "/managedNetworks/" in op.path or "capabilityHosts" in op.path]
    assert all(op.feature == "base" for op in children if op.method == "GET")
    assert {op.feature for op in children if op.method != "GET"} == {"managed-network", "outbound-rules"}
    assert not any(a.endswith(("/write", "/delete")) for a in base if "managedNetworks" in a)


# What each Azure SDK call the gateway makes is, in ARM terms. A call the gateway starts making that is
# not here fails the test below: add it to guardrail/permissions.py (and to this map) first.
SDK_CALLS = {
    "accounts.get": ("GET", "Microsoft.CognitiveServices/accounts/read"),
    "accounts.begin_update": ("PATCH", "Microsoft.CognitiveServices/accounts/write"),
    "diagnostic_settings.list": ("GET", "Microsoft.Insights/diagnosticSettings/read"),
    "diagnostic_settings.create_or_update": ("PUT", "Microsoft.Insights/diagnosticSettings/write"),
    "private_endpoint_connections.begin_create_or_update": (
        "PUT",
        "Microsoft.CognitiveServices/accounts/privateEndpointConnections/write",
    ),
}
RAW_PATHS = {
    "/subscriptions?api-version": ("GET", "Microsoft.Resources/subscriptions/read"),
    "/providers/{ACCOUNTS_PROVIDER}?api-version": ("GET", "Microsoft.CognitiveServices/accounts/read"),
    # gateway.get: one account, read as raw JSON through the client's pipeline
    "/providers/{ACCOUNTS_PROVIDER}/{quote(name)}?api-version": (
        "GET",
        "Microsoft.CognitiveServices/accounts/read",
    ),
}
# gateway.get_child / list_children / send: an account's child by full resource ID (any child type):
# the child reads the rules make, and the writes of the fixes that have a flag.
CHILD_PATH = "{path}?api-version"
CHILD_CALLS = {
    *(("GET", action) for action in CHILD_READS),
    ("PATCH", "Microsoft.CognitiveServices/accounts/managedNetworks/write"),
    ("DELETE", "Microsoft.CognitiveServices/accounts/managedNetworks/outboundRules/delete"),
    ("GET", "Microsoft.MachineLearningServices/locations/mfeOperationsStatus/read"),
}


def test_every_arm_call_in_the_gateway_is_in_the_permissions_list() -> None:
    source = (ROOT / "guardrail" / "gateway.py").read_text()
    listed = {(op.method, op.action) for op in ARM_OPERATIONS}
    sdk_calls = set(
        re.findall(r"client\.(accounts|diagnostic_settings|private_endpoint_connections)\.(\w+)\(", source)
    )
    assert sdk_calls, "found no SDK calls in gateway.py: the scan no longer matches the code"
    for group, method in sorted(sdk_calls):
        key = f"{group}.{method}"
        assert key in SDK_CALLS, f"gateway.py calls {key}: add its ARM operation to guardrail/permissions.py"
        assert SDK_CALLS[key] in listed, (
            f"{key} needs {SDK_CALLS[key]}, missing from guardrail/permissions.py"
        )
    # the child resources the rules read (one generic read in the gateway): each one's action is listed
    from guardrail.rules import CHILD_READS

    for read in CHILD_READS:
        assert ("GET", read.action) in listed, (
            f"{read.key} needs {read.action}: add it to guardrail/permissions.py"
        )
    raw = re.findall(r'f"([^"]*\?api-version)=', source)
    assert raw, "found no raw ARM paths in gateway.py: the scan no longer matches the code"
    for path in raw:
        if path == CHILD_PATH:
            assert listed >= CHILD_CALLS, f"missing from guardrail/permissions.py: {CHILD_CALLS - listed}"
            continue
        matches = [v for k, v in RAW_PATHS.items() if path.endswith(k)]
        assert matches, f"gateway.py requests {path}: add its ARM operation to guardrail/permissions.py"
        assert matches[0] in listed
    if "begin_update" in source:  # an LRO: the poller reads the operation's status
        assert ("GET", "Microsoft.CognitiveServices/locations/operationresults/read") in listed
    # Writing virtualNetworkRules is authorized on each subnet too (403 LinkedAuthorizationFailed).
    assert ("PATCH", "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action") in listed


def _documented_operations() -> list[tuple[str, str, str, str]]:
    text = (ROOT / "docs" / "deploying.md").read_text()
    section = text.split("## ARM calls and the actions they need", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(
        r"^\| `(GET|PUT|PATCH|POST|DELETE)` \| `([^`]+)` \| `([^`]+)` \| ([a-z-]+) \|", section, re.M
    )
    return rows


def test_docs_list_every_arm_call_and_its_action_from_the_permissions_list() -> None:
    documented = _documented_operations()
    assert documented == [(op.method, op.path, op.action, op.feature) for op in ARM_OPERATIONS]
