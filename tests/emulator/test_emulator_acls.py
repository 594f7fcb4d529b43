"""The emulator's own idea of ARM's networkAcls refusals (from the seed document, not the engine),
and the import graph that keeps it independent of the guardrail's engine, rules, ipv4 and policy."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail_workbench.emulator.acls import (
    AclError,
    check_ip_rule,
    check_network_acls,
    has_service_endpoint,
    subnet_parts,
)

REPO = Path(__file__).resolve().parents[2]
EMULATOR = REPO / "guardrail_workbench" / "emulator"
FORBIDDEN = ("guardrail.engine", "guardrail.rules", "guardrail.ipv4", "guardrail.policy")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2001:db8::1", "IPv6"),
        ("::ffff:8.8.8.8", "IPv6-mapped"),
        ("8.8.8.8/32", "/32"),
        ("8.8.8.8/31", "/31"),
        ("10.0.0.1", "RFC 1918 10/8"),
        ("172.16.0.0/12", "RFC 1918 172.16/12"),
        ("172.31.255.255", "RFC 1918 top of 172.16/12"),
        ("192.168.0.0/16", "RFC 1918 192.168/16"),
        ("8.0.0.0/4", "a range that contains 10/8"),
        ("8.8.8.256", "bad octet"),
        ("8.8.8", "short form"),
        ("08.8.8.8", "leading zero"),
        (" 8.8.8.8", "whitespace"),
        ("8.8.8.8/33", "prefix too long"),
        ("", "empty"),
        (None, "missing"),
        (8, "not text"),
    ],
)
def test_refused_ip_rules(value: object, why: str) -> None:
    with pytest.raises(AclError) as refused:
        check_ip_rule(value)
    assert refused.value.status == 400, why
    assert refused.value.code == "InvalidIpRule"


@pytest.mark.parametrize(
    "value",
    ["8.8.8.8", "16.17.18.19", "16.17.18.0/24", "172.15.255.255", "172.32.0.0", "11.0.0.0/8", "8.8.8.0/30"],
)
def test_accepted_ip_rules(value: str) -> None:
    assert check_ip_rule(value).version == 4


def test_non_public_mode_refuses_special_purpose_blocks_the_document_does_not_name() -> None:
    for value in ("203.0.113.5", "100.64.0.1", "127.0.0.1", "169.254.1.1", "224.0.0.1"):
        check_ip_rule(value)  # documented mode: accepted
        with pytest.raises(AclError):
            check_ip_rule(value, "non-public")


def test_rule_counts_default_action_and_bypass() -> None:
    check_network_acls({"ipRules": [{"value": f"20.0.{i}.1"} for i in range(100)]})
    with pytest.raises(AclError) as ips:
        check_network_acls({"ipRules": [{"value": f"20.0.{i}.1"} for i in range(101)]})
    assert ips.value.code == "MaxNumberOfIpRulesExceeded"
    with pytest.raises(AclError) as vnets:
        check_network_acls({"virtualNetworkRules": [{"id": f"/s/{i}"} for i in range(101)]})
    assert vnets.value.code == "MaxNumberOfVirtualNetworkRulesExceeded"
    for bad in (
        {"defaultAction": "Block"},
        {"bypass": "Everything"},
        {"ipRules": {"value": "8.8.8.8"}},
        "Deny",
    ):
        with pytest.raises(AclError):
            check_network_acls(bad)
    check_network_acls(None)
    check_network_acls({"defaultAction": "Deny", "bypass": "AzureServices"})


def test_subnet_ids_and_service_endpoints() -> None:
    subnet = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
    assert subnet_parts(subnet) == ("s", "rg", "v", "a")
    assert subnet_parts("/subscriptions/s/subnets/a") is None
    assert has_service_endpoint(
        {"properties": {"serviceEndpoints": [{"service": "microsoft.cognitiveservices"}]}}
    )
    assert not has_service_endpoint({"properties": {"serviceEndpoints": [{"service": "Microsoft.Storage"}]}})
    assert not has_service_endpoint({})


def test_importing_the_emulator_loads_none_of_the_engine() -> None:
    code = (
        "import json, sys\n"
        "from guardrail_workbench.emulator import Emulator\n"
        "Emulator(port=0).start().stop()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('guardrail'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.startswith(FORBIDDEN)], loaded


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_emulator_module_imports_the_engine_even_lazily() -> None:
    files = sorted(EMULATOR.glob("*.py"))
    assert len(files) >= 5
    offenders = {
        f.name: sorted(n for n in _imports(f) if n.startswith(FORBIDDEN) or n in ("guardrail",))
        for f in files
    }
    assert not {k: v for k, v in offenders.items() if v}, offenders


@pytest.mark.parametrize("value", ["1.2.3.0/255.255.255.0", "1.2.3.4/0.0.0.255", "8.8.8.0/024", "８.8.8.8"])
def test_only_cidr_notation(value: str) -> None:
    with pytest.raises(AclError):
        check_ip_rule(value)


_octet = st.integers(0, 255)


@given(_octet, _octet, _octet, _octet, st.one_of(st.none(), st.integers(0, 32)))
def test_acceptance_is_exactly_the_documented_rule(
    a: int, b: int, c: int, d: int, prefix: int | None
) -> None:
    import ipaddress

    value = f"{a}.{b}.{c}.{d}" + ("" if prefix is None else f"/{prefix}")
    network = ipaddress.ip_network(value, strict=False)
    private = any(
        network.overlaps(ipaddress.ip_network(p)) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    )
    expected = not private and prefix not in (31, 32)
    try:
        check_ip_rule(value)
        accepted = True
    except AclError:
        accepted = False
    assert accepted == expected


@given(
    st.one_of(
        st.tuples(_octet, _octet, _octet, _octet, st.one_of(st.none(), st.integers(0, 33))).map(
            lambda t: f"{t[0]}.{t[1]}.{t[2]}.{t[3]}" + ("" if t[4] is None else f"/{t[4]}")
        ),
        st.text(alphabet="0123456789./:abf ", max_size=20),
    )
)
def test_what_the_emulator_accepts_the_engine_parses(value: str) -> None:
    """A differential check (the test may import the engine; the emulator may not): an IP rule ARM
    accepts must be one the guardrail can read, or it would misjudge a real account."""
    from guardrail.ipv4 import parse_rule

    try:
        network = check_ip_rule(value)
    except AclError:
        return
    parsed = parse_rule(value)
    assert parsed is not None, value
    assert (parsed.first, parsed.last) == (int(network.network_address), int(network.broadcast_address))
