"""The agent-era rules (issue #24) on snapshots: the Foundry managed network and its outbound
rules, agent subnets and capability hosts, network security perimeters. Unit tests of each edge,
and the engine's guarantees as properties: the plan never widens (each action's type approves
it), and it is a fixpoint (applied, the snapshot needs no action)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.actions import Action, Snapshot
from guardrail.engine import Evaluation, action_widening, plan
from guardrail.policy import Policy, parse_policy

from ._factory import NOW
from .strategies import ALLOWED_FQDNS, FQDNS, PE_SUBS, SUBNETS, SUBS, policies

RID = f"/subscriptions/{SUBS[0]}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/foundry"
FOREIGN = "ffffffff-0000-4000-8000-00000000beef"
FOREIGN_SUBNET = (
    f"/subscriptions/{FOREIGN}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/agents"
)


def account(**props: Any) -> dict[str, Any]:
    return {
        "id": RID,
        "type": "Microsoft.CognitiveServices/accounts",
        "kind": "AIServices",
        "properties": {"allowProjectManagement": True, "publicNetworkAccess": "Disabled", **props},
    }


def managed(mode: str, **rules: dict[str, Any]) -> dict[str, Any]:
    outbound = {name: {"status": "Active", **rule} for name, rule in rules.items()}
    return {"properties": {"managedNetwork": {"isolationMode": mode, "outboundRules": outbound}}}


def fqdn(destination: str, category: str = "UserDefined") -> dict[str, Any]:
    return {"type": "FQDN", "destination": destination, "category": category}


def policy(**network: Any) -> Policy:
    remediate = network.pop("remediate", {})
    return parse_policy(
        {"version": 1, "network": {"require_default_deny": False, **network}, "remediate": remediate}
    )


def judge(snapshot: Snapshot, p: Policy) -> Evaluation:
    result = plan(snapshot, p, NOW)
    assert isinstance(result, Evaluation), result
    return result


def rules_of(result: Evaluation) -> list[tuple[str, bool]]:
    return [(f.rule, f.fixed) for f in result.findings]


# -- managed-network-internet-outbound -----------------------------------------------------------


def test_internet_outbound_is_fixed_only_when_turned_on() -> None:
    snapshot = Snapshot(account(), {"managedNetwork": managed("AllowInternetOutbound")})
    reported = judge(snapshot, policy(require_approved_outbound=True))
    assert rules_of(reported) == [("managed-network-internet-outbound", False)] and reported.actions == ()
    fixed = judge(
        snapshot,
        policy(require_approved_outbound=True, remediate={"managed-network-internet-outbound": True}),
    )
    assert [a.to_json() for a in fixed.actions] == [
        {
            "kind": "patch-managed-network",
            "method": "PATCH",
            "target": f"{RID}/managedNetworks/default",
            "body": {"properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}},
            "rules": ["managed-network-internet-outbound"],
        }
    ]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("AllowOnlyApprovedOutbound", []), ("Disabled", [("managed-network-internet-outbound", False)])],
)
def test_approved_outbound_passes_and_disabled_is_report_only(mode: str, expected: list[Any]) -> None:
    p = policy(require_approved_outbound=True, remediate={"managed-network-internet-outbound": True})
    result = judge(Snapshot(account(), {"managedNetwork": managed(mode)}), p)
    assert rules_of(result) == expected and result.actions == ()


def test_no_managed_network_and_the_switch_off_judge_nothing() -> None:
    on = policy(require_approved_outbound=True)
    assert judge(Snapshot(account(), {"managedNetwork": None}), on).findings == ()
    off = policy()
    assert (
        judge(Snapshot(account(), {"managedNetwork": managed("AllowInternetOutbound")}), off).findings == ()
    )


# -- managed-network-outbound-rule-not-allowed ---------------------------------------------------


def test_user_defined_fqdn_rules_outside_the_policy_are_deleted_and_azures_own_are_untouched() -> None:
    network = managed(
        "AllowOnlyApprovedOutbound",
        ok=fqdn("api.contoso.com"),
        wildcard=fqdn("x.contoso.net"),
        exfil=fqdn("exfil.evil.example"),
        lookalike=fqdn("api.contoso.com.evil.net"),
        required=fqdn("evil.example", "Required"),
        recommended=fqdn("evil.example", "Recommended"),
    )
    result = judge(Snapshot(account(), {"managedNetwork": network}), policy(allowed_fqdns=ALLOWED_FQDNS))
    assert {f.value for f in result.findings} == {"exfil", "lookalike"}
    assert {(a.method, a.target, a.body) for a in result.actions} == {
        ("DELETE", f"{RID}/managedNetworks/default/outboundRules/exfil", None),
        ("DELETE", f"{RID}/managedNetworks/default/outboundRules/lookalike", None),
    }


def test_private_endpoint_rules_are_judged_by_their_target_subscription() -> None:
    def to(sub: str) -> dict[str, Any]:
        target = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s"
        return {
            "type": "PrivateEndpoint",
            "category": "UserDefined",
            "destination": {"serviceResourceId": target, "subresourceTarget": "blob"},
        }

    network = managed("AllowOnlyApprovedOutbound", mine=to(PE_SUBS[0]), theirs=to(FOREIGN))
    p = policy(allowed_private_endpoint_subscriptions=[PE_SUBS[0]])
    result = judge(Snapshot(account(), {"managedNetwork": network}), p)
    assert [f.value for f in result.findings] == ["theirs"]
    assert [a.target.rsplit("/", 1)[-1] for a in result.actions] == ["theirs"]


def test_an_outbound_rule_whose_name_cannot_be_a_resource_id_is_reported_not_deleted() -> None:
    network = managed(
        "AllowOnlyApprovedOutbound", **{"..": fqdn("evil.example"), "a/b": fqdn("evil.example")}
    )
    result = judge(Snapshot(account(), {"managedNetwork": network}), policy(allowed_fqdns=ALLOWED_FQDNS))
    assert len(result.findings) == 2 and not any(f.fixed for f in result.findings) and result.actions == ()


# -- agent-subnet-not-allowed, agent-public-hosting ----------------------------------------------


def test_agent_subnets_and_capability_hosts_outside_the_policy_are_reported() -> None:
    injections = [
        {"scenario": "agent", "subnetArmId": FOREIGN_SUBNET, "useMicrosoftManagedNetwork": False},
        {"scenario": "agent", "subnetArmId": SUBNETS[0], "useMicrosoftManagedNetwork": False},
    ]
    hosts = [
        {
            "name": "caphost",
            "properties": {"customerSubnet": FOREIGN_SUBNET, "enablePublicHostingEnvironment": True},
        }
    ]
    p = policy(allowed_vnet_subscriptions=[SUBS[0]], forbid_public_agent_hosting=True)
    result = judge(Snapshot(account(networkInjections=injections), {"capabilityHosts": hosts}), p)
    assert rules_of(result) == [
        ("agent-subnet-not-allowed", False),
        ("agent-subnet-not-allowed", False),
        ("agent-public-hosting", False),
    ]
    assert result.actions == ()
    assert (
        judge(Snapshot(account(networkInjections=injections), {"capabilityHosts": hosts}), policy()).findings
        == ()
    )


# -- perimeter-not-enforced, perimeter-access-rule-not-allowed -----------------------------------


def configuration(mode: str, *prefixes: str, subscriptions: tuple[str, ...] = ()) -> dict[str, Any]:
    rule = {
        "name": "inbound",
        "properties": {
            "direction": "Inbound",
            "addressPrefixes": list(prefixes),
            "subscriptions": [{"id": f"/subscriptions/{s}"} for s in subscriptions],
        },
    }
    return {
        "name": "nsp-config",
        "properties": {
            "networkSecurityPerimeter": {
                "id": f"/subscriptions/{SUBS[0]}/resourceGroups/rg/providers/Microsoft.Network/"
                "networkSecurityPerimeters/nsp"
            },
            "resourceAssociation": {"name": "assoc", "accessMode": mode},
            "profile": {"name": "default", "accessRules": [rule]},
        },
    }


def test_a_perimeter_in_learning_mode_or_none_at_all_is_reported() -> None:
    p = policy(require_perimeter=True)
    assert rules_of(judge(Snapshot(account(), {"networkSecurityPerimeterConfigurations": []}), p)) == [
        ("perimeter-not-enforced", False)
    ]
    learning = {"networkSecurityPerimeterConfigurations": [configuration("Learning")]}
    assert rules_of(judge(Snapshot(account(), learning), p)) == [("perimeter-not-enforced", False)]
    enforced = {"networkSecurityPerimeterConfigurations": [configuration("Enforced")]}
    assert judge(Snapshot(account(), enforced), p).findings == ()


def test_perimeter_access_rules_are_judged_as_ip_rules_are() -> None:
    p = policy(require_perimeter=True, min_prefix_length=16, allowed_vnet_subscriptions=[SUBS[0]])
    config = configuration(
        "Enforced", "10.0.0.0/8", "52.1.0.0/24", "20.0.0.0/8", subscriptions=(SUBS[0], FOREIGN)
    )
    result = judge(Snapshot(account(), {"networkSecurityPerimeterConfigurations": [config]}), p)
    assert [f.value for f in result.findings] == ["10.0.0.0/8", "20.0.0.0/8", f"/subscriptions/{FOREIGN}"]
    assert all(f.rule == "perimeter-access-rule-not-allowed" and not f.fixed for f in result.findings)


# -- the guarantees, as properties ---------------------------------------------------------------

destinations = st.sampled_from([*FQDNS, "exfil.evil.example"])
outbound_rules = st.dictionaries(
    st.sampled_from(["a", "b", "c", "..", "x/y"]),
    st.builds(fqdn, destinations, st.sampled_from(["UserDefined", "Required", "Recommended"])),
    max_size=4,
)
managed_networks = st.one_of(
    st.none(),
    st.builds(
        lambda mode, rules: managed(mode, **rules),
        st.sampled_from(["AllowInternetOutbound", "AllowOnlyApprovedOutbound", "Disabled", "odd"]),
        outbound_rules,
    ),
)


CHILD_KINDS = ("patch-managed-network", "delete-outbound-rule")


def applied(snapshot: Snapshot, actions: tuple[Action, ...]) -> Snapshot:
    """What ARM would hold after the plan's child-resource actions."""
    network = copy.deepcopy(snapshot.children.get("managedNetwork"))
    for action in actions:
        if action.kind == "patch-managed-network":
            network["properties"]["managedNetwork"]["isolationMode"] = "AllowOnlyApprovedOutbound"
        elif action.kind == "delete-outbound-rule":
            del network["properties"]["managedNetwork"]["outboundRules"][action.target.rsplit("/", 1)[-1]]
    return Snapshot(snapshot.account, {**snapshot.children, "managedNetwork": network})


@given(managed_networks, policies())
def test_the_managed_network_plan_never_widens_and_is_a_fixpoint(network: Any, p: Policy) -> None:
    snapshot = Snapshot(account(), {"managedNetwork": network})
    result = judge(snapshot, p)
    assert any(f.fixed for f in result.findings) == bool(result.actions)
    for action in result.actions:
        assert action_widening(snapshot, action) == [], action
    if network is not None:
        modes = [network["properties"]["managedNetwork"]["isolationMode"]]
        after = applied(snapshot, result.actions)
        modes.append(after.children["managedNetwork"]["properties"]["managedNetwork"]["isolationMode"])
        assert modes[1] == modes[0] or modes[1] == "AllowOnlyApprovedOutbound"  # only ever narrowed
        kept = after.children["managedNetwork"]["properties"]["managedNetwork"]["outboundRules"]
        assert set(kept) <= set(network["properties"]["managedNetwork"]["outboundRules"])  # only deleted
        again = judge(after, p).actions
        assert [a for a in again if a.kind in CHILD_KINDS] == []  # a fixpoint


def test_a_rule_that_shows_its_action_records_what_was_written_not_an_account_property() -> None:
    """Records of a rule fixed by writing a resource of its own (`Rule.shows == "@action"`) have no
    Before and, when remediated, the written resource as After, whether the record comes from this
    check or from an earlier entry settled later (both go through `records.side`/`written`)."""
    from guardrail.records import side, written

    props = {"networkAcls": {"defaultAction": "Deny"}}
    delete = Action(
        "delete-outbound-rule", "DELETE", f"{RID}/managedNetworks/default/outboundRules/x", None, ()
    )
    patch = Action("patch-managed-network", "PATCH", f"{RID}/managedNetworks/default", {"properties": {}}, ())
    assert side("managed-network-outbound-rule-not-allowed", props) is None
    assert written("managed-network-outbound-rule-not-allowed", props, delete) == {
        "name": "x",
        "deleted": True,
    }
    assert written("managed-network-internet-outbound", props, patch) == {"name": "default", "properties": {}}
    assert written("managed-network-internet-outbound", props, None) is None
    assert side("default-action-deny", props) == {"defaultAction": "Deny"}  # the account's own state
    assert written("default-action-deny", props, None) == {"defaultAction": "Deny"}
