"""Hypothesis strategies: account bodies (well-formed, odd and malformed) and policies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from guardrail.policy import Policy, parse_policy
from guardrail.rules import FIXABLE_RULES, RULE_IDS

from ._factory import NOW

SUBS = ["00000000-1111-2222-3333-444444444444", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]
RGS = ["rg-sandbox", "rg-sandbox2", "RG-App"]
NAMES = ["acct", "oai", "ACCT"]
KINDS = ["OpenAI", "AIServices", "openai", "TextTranslation"]

RESOURCE_IDS = [
    f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}"
    for sub in SUBS
    for rg in RGS
    for name in NAMES
]
SUBNETS = [
    f"/subscriptions/{sub}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/v{v}/subnets/{s}"
    for sub in SUBS
    for v in (1, 2)
    for s in ("a", "b")
]
ALLOWED_RANGES = ["20.0.0.0/8", "52.0.0.0/8", "4.0.0.0/8", "5.0.0.0/8", "52.10.0.0/16", "8.8.8.8"]
# Edges of the non-public table and of the allowed ranges, and some ordinary public space.
INTERESTING = [
    0, 0x00FFFFFF, 0x01000000, 0x09FFFFFF, 0x0A000000, 0x0AFFFFFF, 0x0B000000, 0x04000000, 0x05FFFFFF,
    0x14000000, 0x14FFFFFF, 0x34000000, 0x340A0000, 0x34FFFFFF, 0x643FFFFF, 0x64400000, 0x647FFFFF,
    0x64800000, 0x7F000000, 0xA9FE0000, 0xAC0FFFFF, 0xAC100000, 0xAC1FFFFF, 0xAC200000, 0xC0000000,
    0xC00002FF, 0xC0A80000, 0xC6120000, 0xC613FFFF, 0xCB007100, 0xDFFFFFFF, 0xE0000000, 0xFFFFFFFF,
    0x08080808,
]  # fmt: skip


def _copies(strategy: st.SearchStrategy[Any], count: int) -> list[st.SearchStrategy[Any]]:
    """`count` distinct strategy objects drawing like `strategy`: st.one_of de-duplicates
    identical branches, so repeating one object does not weight it."""
    return [strategy.map(lambda value: value) for _ in range(count)]


def _address(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


# Public space, some inside the allowed ranges (4/8, 5/8, 20/8, 52/8).
PUBLIC_BASES = [0x04000000, 0x05000000, 0x14000000, 0x34000000, 0x340A0000, 0x08000000, 0x63000000]
addresses = st.one_of(
    *_copies(
        st.builds(lambda base, low: base + low, st.sampled_from(PUBLIC_BASES), st.integers(0, 0xFFFF)), 3
    ),
    st.sampled_from(INTERESTING),
    st.sampled_from(INTERESTING).flatmap(lambda a: st.integers(max(a - 3, 0), min(a + 3, 2**32 - 1))),
    st.integers(0, 2**32 - 1),
)
prefixes = st.one_of(*_copies(st.none(), 2), st.sampled_from([8, 16, 24, 30, 31, 32]), st.integers(0, 32))

valid_ip_values = st.builds(lambda a, p: _address(a) + ("" if p is None else f"/{p}"), addresses, prefixes)
invalid_ip_values = st.one_of(
    st.sampled_from(
        ["2001:db8::1", "::/0", "1.2.3", "256.1.1.1", "1.2.3.4/33", "01.2.3.4", "1.2.3.4/08", " 1.2.3.4", "",
         "1.2.3.0/255.255.255.0", "１.２.３.４", "52.1.1.1/", "*"]
    ),
    st.text(max_size=12),
)  # fmt: skip
ip_values = st.one_of(*_copies(valid_ip_values, 4), invalid_ip_values)

odd_json = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5))
_ip_entry = ip_values.map(lambda v: {"value": v})
ip_entries = st.one_of(
    *_copies(_ip_entry, 6),
    ip_values.map(lambda v: {"value": v, "extra": 1}),
    odd_json.map(lambda v: {"value": v}),
    st.just({}),
    odd_json,
)
subnet_values = st.one_of(
    st.sampled_from(SUBNETS),
    st.sampled_from(SUBNETS).map(str.upper),
    st.sampled_from(SUBNETS).map(lambda s: s + "/x"),
    st.text(max_size=8),
)
vnet_entries = st.one_of(
    subnet_values.map(lambda s: {"id": s, "state": "Succeeded", "ignoreMissingVnetServiceEndpoint": False}),
    subnet_values.map(lambda s: {"id": s}),
    odd_json.map(lambda v: {"id": v}),
    odd_json,
)

# -- private endpoint connections and outbound FQDNs -------------------------------------------

PE_SUBS = [SUBS[0], SUBS[1].upper(), "bbbbbbbb-1111-2222-3333-444444444444"]
private_endpoint_ids = st.one_of(
    st.builds(
        lambda sub, name: (
            f"/subscriptions/{sub}/resourceGroups/rg-pe/providers/Microsoft.Network/privateEndpoints/{name}"
        ),
        st.sampled_from(PE_SUBS),
        st.sampled_from(["pe1", "pe2", "PE1"]),
    ),
    st.sampled_from(["", "/subscriptions/x", "not-an-id"]),
    st.none(),
    st.integers(),
)
STATUSES = ["Approved", "Pending", "Rejected", "Disconnected", "approved", "PENDING", "Other"]


@st.composite
def private_endpoint_connections(draw: st.DrawFn, account_id: str) -> Any:
    """One connection as ARM lists it, sometimes damaged (no id, a foreign id, odd shapes)."""
    name = draw(st.sampled_from(["c1", "c2", "c3"]))
    ids = st.sampled_from(
        [
            f"{account_id}/privateEndpointConnections/{name}",
            f"{account_id.upper()}/privateEndpointConnections/{name}",
            f"{RESOURCE_IDS[1]}/privateEndpointConnections/{name}",  # another account's: never written
            f"{account_id}/privateEndpointConnections/{name}/x",
        ]
    )
    connection: dict[str, Any] = {
        "id": draw(_usually(ids)),
        "name": draw(_maybe(st.just(name))),
        "type": "Microsoft.CognitiveServices/accounts/privateEndpointConnections",
        "properties": {
            "privateEndpoint": draw(_usually(private_endpoint_ids.map(lambda i: {"id": i}))),
            "privateLinkServiceConnectionState": draw(
                _usually(
                    st.builds(
                        lambda status: {"status": status, "description": "", "actionsRequired": "None"},
                        st.sampled_from(STATUSES),
                    )
                )
            ),
            "provisioningState": "Succeeded",
        },
    }
    result = _drop_missing(connection)
    result["properties"] = _drop_missing(result["properties"])
    return draw(st.one_of(*_copies(st.just(result), 6), odd_json))


FQDNS = [
    "api.contoso.com", "API.CONTOSO.COM", "x.contoso.net", "contoso.net", "*.contoso.net", "evil.example",
    "api.contoso.com.evil.net", "evilcontoso.net", "a.b.contoso.net", "*", "",
]  # fmt: skip
fqdn_entries = st.one_of(*_copies(st.sampled_from(FQDNS), 4), odd_json)
ALLOWED_FQDNS = ["api.contoso.com", "*.contoso.net", "Example.org", "*.b.contoso.net"]

_MISSING: Any = object()


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(_MISSING), st.none(), strategy)


def _usually(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Present most of the time, sometimes missing or null."""
    return st.one_of(*_copies(strategy, 4), st.just(_MISSING), st.none())


def _drop_missing(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not _MISSING}


network_acls = st.builds(
    lambda d, b, ips, vnets, extra: _drop_missing(
        {"defaultAction": d, "bypass": b, "ipRules": ips, "virtualNetworkRules": vnets, **extra}
    ),
    _usually(st.sampled_from(["Allow", "Deny", "Deny", "Deny", "deny", "ALLOW", "Other"])),
    _maybe(st.sampled_from(["AzureServices", "None", "azureservices", "NONE", "Logging"])),
    _usually(st.lists(ip_entries, max_size=12)),
    _maybe(st.lists(vnet_entries, max_size=5)),
    st.sampled_from([{}, {"extra": "kept"}]),
)

properties = st.builds(
    lambda pna, dla, sub, acls: _drop_missing(
        {
            "provisioningState": "Succeeded",
            "publicNetworkAccess": pna,
            "disableLocalAuth": dla,
            "customSubDomainName": sub,
            "networkAcls": acls,
        }
    ),
    _maybe(st.sampled_from(["Enabled", "Disabled", "disabled", "SecuredByPerimeter"])),
    _maybe(st.booleans()),
    _maybe(st.sampled_from(["acct", ""])),
    _usually(network_acls),
)


@st.composite
def _accounts(draw: st.DrawFn) -> dict[str, Any]:
    rid = draw(st.sampled_from(RESOURCE_IDS))
    props = draw(_maybe(properties))
    if isinstance(props, dict):
        extra = {
            "restrictOutboundNetworkAccess": draw(_maybe(st.booleans())),
            "allowedFqdnList": draw(_maybe(st.lists(fqdn_entries, max_size=5))),
            "privateEndpointConnections": draw(
                _maybe(st.lists(private_endpoint_connections(rid), max_size=3))
            ),
        }
        props = {**props, **_drop_missing(extra)}
    return _drop_missing(
        {
            "id": rid,
            "name": rid.rsplit("/", 1)[-1],
            "type": "Microsoft.CognitiveServices/accounts",
            "kind": draw(_maybe(st.sampled_from(KINDS))),
            "location": "eastus",
            "properties": props,
        }
    )


accounts = _accounts()

# -- policies ----------------------------------------------------------------------------------

SCOPES = [
    f"/subscriptions/{SUBS[0]}",
    f"/subscriptions/{SUBS[0]}/resourceGroups/rg-sandbox",
    f"/subscriptions/{SUBS[1]}/resourceGroups/RG-APP",
    RESOURCE_IDS[0],
    RESOURCE_IDS[-1].lower(),
]
exemptions = st.builds(
    lambda scope, rules, days: {
        "scope": scope,
        "rules": rules,
        "expires": (NOW.date() + dt.timedelta(days=days)).isoformat(),
    },
    st.sampled_from(SCOPES),
    st.one_of(st.just(["*"]), st.lists(st.sampled_from(RULE_IDS), min_size=1, max_size=4, unique=True)),
    st.integers(-2, 2),
)
remediate = st.dictionaries(st.sampled_from(RULE_IDS), st.booleans(), max_size=6).map(
    lambda d: {rule: (on and rule in FIXABLE_RULES) for rule, on in d.items()}
)


_network_policy = st.fixed_dictionaries(
    {
        "require_default_deny": st.booleans(),
        "require_public_network_disabled": st.booleans(),
        "min_prefix_length": st.sampled_from([0, 0, 8, 16, 24, 31, 32]),
        "allowed_ip_ranges": st.lists(st.sampled_from(ALLOWED_RANGES), max_size=3, unique=True),
        "allowed_vnet_subscriptions": st.lists(st.sampled_from(SUBS), max_size=1),
        "allowed_subnets": st.lists(st.sampled_from(SUBNETS), max_size=2, unique=True),
        "bypass_allowed_kinds": st.lists(st.sampled_from(KINDS), max_size=2),
        "bypass_allowed_accounts": st.lists(st.sampled_from(RESOURCE_IDS), max_size=2),
        "allowed_private_endpoint_subscriptions": st.lists(st.sampled_from(PE_SUBS), max_size=2),
        "require_outbound_restricted": st.booleans(),
        "allowed_fqdns": st.lists(st.sampled_from(ALLOWED_FQDNS), max_size=3, unique=True),
        "require_approved_outbound": st.booleans(),
        "forbid_public_agent_hosting": st.booleans(),
        "require_perimeter": st.booleans(),
    }
)
_policy_data = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "network": _network_policy,
        "auth": st.fixed_dictionaries({"require_local_auth_disabled": st.booleans()}),
        "remediate": remediate,
        "exemptions": st.one_of(*_copies(st.just([]), 2), st.lists(exemptions, max_size=2)),
    }
)


def policies() -> st.SearchStrategy[Policy]:
    return _policy_data.map(lambda data: parse_policy(data, "generated.yaml"))


# A few fixed policies, cheap to draw, for the "never raises" properties: the body is what varies.
PRESET_POLICIES = [
    Policy.default(),
    parse_policy(
        {
            "version": 1,
            "network": {
                "require_public_network_disabled": True,
                "min_prefix_length": 24,
                "allowed_ip_ranges": ALLOWED_RANGES,
                "allowed_vnet_subscriptions": SUBS[:1],
                "allowed_subnets": SUBNETS[-1:],
                "bypass_allowed_kinds": ["OpenAI"],
                "bypass_allowed_accounts": RESOURCE_IDS[:1],
                "allowed_private_endpoint_subscriptions": SUBS[:1],
                "require_outbound_restricted": True,
                "allowed_fqdns": ALLOWED_FQDNS,
            },
            "auth": {"require_local_auth_disabled": True},
            "remediate": {
                "public-network-access": True,
                "local-auth-enabled": True,
                "outbound-not-restricted": True,
            },
            "exemptions": [{"scope": SCOPES[1], "rules": ["*"], "expires": NOW.date().isoformat()}],
        },
        "preset.yaml",
    ),
    parse_policy(
        {"version": 1, "network": {"require_default_deny": False}, "remediate": {"ip-rule-invalid": False}},
        "preset2.yaml",
    ),
]
preset_policies = st.sampled_from(PRESET_POLICIES)


# -- random JSON and damaged accounts, for "never raises" ---------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def damaged_accounts(draw: st.DrawFn) -> Any:
    """A generated account with one value somewhere inside replaced by random JSON."""
    body = draw(accounts)
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, [*path, key])
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, [*path, index])

    walk(body, [])
    path = draw(st.sampled_from(paths))
    replacement = draw(json_values)
    if not path:
        return replacement
    node = body
    for step in path[:-1]:
        node = node[step]
    if draw(st.booleans()) and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = replacement
    return body
