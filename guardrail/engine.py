"""The policy engine: pure. (account JSON, policy, now) in; findings and the exact PATCH body out.

It knows nothing of Azure SDKs and performs no I/O. Guarantees (property-tested):
1. the remediation never widens what the account allows;
2. it is a fixpoint: applying it and evaluating again gives no remediation;
3. evaluation never raises on a malformed body: it returns findings or an `InvalidAccount`.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from guardrail import ipv4
from guardrail.policy import ACCOUNT_ID_RE, SUBNET_ID_RE, Policy
from guardrail.rules import BY_ID, MAX_IP_RULES, MAX_VNET_RULES

ACCOUNT_TYPE: Final = "microsoft.cognitiveservices/accounts"


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    message: str
    value: str | None
    exempted: bool = False
    fixed: bool = False  # the remediation repairs it (false for report-only, exempted or not remediated)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "exempted": self.exempted,
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    resource_id: str
    kind: str
    findings: tuple[Finding, ...]
    remediation: dict[str, Any] | None
    # Set when the policy's diagnostics rule applies and its fix is enabled: the diagnostic
    # setting to create (not part of the account PATCH body).
    diagnostic_setting: dict[str, Any] | None = None

    @property
    def compliant(self) -> bool:
        return all(finding.exempted for finding in self.findings)

    @property
    def active(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if not finding.exempted)

    def to_json(self) -> dict[str, Any]:
        return {
            "resource_id": self.resource_id,
            "compliant": self.compliant,
            "findings": [finding.to_json() for finding in self.findings],
            "remediation": self.remediation,
        }


@dataclass(frozen=True, slots=True)
class InvalidAccount:
    """The body is not an account the guardrail can judge; nothing may be written."""

    message: str
    resource_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "error": self.message}


@dataclass(slots=True)
class _Context:
    policy: Policy
    resource_id: str
    today: dt.date
    findings: list[Finding] = field(default_factory=list)
    # rule -> (severity, exempted, fixed): the same for every finding of a rule on this account
    decisions: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)

    def report(self, rule: str, message: str, value: str | None) -> bool:
        """Record a finding; True when the remediation should repair it."""
        decision = self.decisions.get(rule)
        if decision is None:
            exempted = self.policy.exemption_for(self.resource_id, rule, self.today) is not None
            fixed = not exempted and self.policy.remediates(rule)
            decision = self.decisions[rule] = (BY_ID[rule].severity, exempted, fixed)
        severity, exempted, fixed = decision
        self.findings.append(Finding(rule, severity, message, value, exempted, fixed))
        return fixed


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def _check_shape(account: object) -> InvalidAccount | tuple[str, str, Mapping[str, Any]]:
    if not isinstance(account, Mapping):
        return InvalidAccount(f"the body is a JSON {type(account).__name__}, not an account object")
    resource_id = account.get("id")
    rid = resource_id if isinstance(resource_id, str) else None
    kind_type = account.get("type")
    if not isinstance(kind_type, str) or kind_type.lower() != ACCOUNT_TYPE:
        return InvalidAccount(f"not a Microsoft.CognitiveServices/accounts body (type is {kind_type!r})", rid)
    if rid is None or not ACCOUNT_ID_RE.fullmatch(rid):
        return InvalidAccount(f"'id' is not an account resource ID (got {resource_id!r})", rid)
    kind = account.get("kind")
    if kind is not None and not isinstance(kind, str):
        return InvalidAccount(f"'kind' must be a string (got {kind!r})", rid)
    properties = account.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, Mapping):
        return InvalidAccount(f"'properties' must be an object (got {type(properties).__name__})", rid)
    expected: tuple[tuple[str, type | tuple[type, ...]], ...] = (
        ("publicNetworkAccess", str),
        ("disableLocalAuth", bool),
        ("customSubDomainName", str),
        ("networkAcls", Mapping),
    )
    for key, types in expected:
        value = properties.get(key)
        if value is not None and not isinstance(value, types):
            return InvalidAccount(f"'properties.{key}' has the wrong type (got {value!r})", rid)
    acls = properties.get("networkAcls")
    if acls is not None:
        for key, types in (
            ("defaultAction", str),
            ("bypass", str),
            ("ipRules", list),
            ("virtualNetworkRules", list),
        ):
            value = acls.get(key)
            if value is not None and not isinstance(value, types):
                return InvalidAccount(
                    f"'properties.networkAcls.{key}' has the wrong type (got {value!r})", rid
                )
    return rid, kind or "", properties


def _is_mapping(value: object) -> bool:
    # JSON objects are dicts: skip the (slow) ABC check for them
    return type(value) is dict or isinstance(value, Mapping)


def _ip_rules(ctx: _Context, rules: list[Any]) -> tuple[list[Any], bool]:
    """Classify IP rules; return the rules to keep (rewritten, de-duplicated) and whether any changed."""
    policy = ctx.policy
    min_prefix = policy.network.min_prefix_length
    allowed = policy.allowed_ranges
    parse_rule = ipv4.parse_rule
    non_public_overlap = ipv4.non_public_overlap
    kept: list[Any] = []
    changed = False
    for entry in rules:
        is_mapping = type(entry) is dict or isinstance(entry, Mapping)  # skip the slow ABC check
        value = entry.get("value") if is_mapping else None
        parsed = parse_rule(value)
        if parsed is None:
            shown = _text(value) if is_mapping else _text(entry)
            if ctx.report("ip-rule-invalid", f"IP rule {shown!r} is not an IPv4 address or CIDR", shown):
                changed = True
            else:
                kept.append(entry)
            continue
        first, last, prefix, has_prefix = parsed
        block = non_public_overlap(parsed)
        if block is not None:
            rule, message = "ip-rule-not-public", f"IP rule {value} overlaps non-public space {block}"
        elif min_prefix and prefix < min_prefix:
            rule, message = "ip-rule-too-broad", f"IP rule {value} is broader than /{min_prefix}"
        elif allowed and not _inside_one(first, last, allowed):
            rule, message = "ip-rule-not-allowlisted", f"IP rule {value} is not inside allowed_ip_ranges"
        elif has_prefix and prefix >= 31:
            addresses = ipv4.split_to_addresses(parsed)
            message = (
                f"IP rule {value} uses a /{prefix} prefix, which ARM refuses; write {', '.join(addresses)}"
            )
            if ctx.report("ip-rule-prefix-unsupported", message, value):
                changed = True
                kept.extend({**entry, "value": address} for address in addresses)
            else:
                kept.append(entry)
            continue
        else:
            kept.append(entry)
            continue
        if ctx.report(rule, message, value):
            changed = True
        else:
            kept.append(entry)
    if changed:
        kept = _dedupe(kept)
    return kept, changed


def _inside_one(first: int, last: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    """True when first..last lies wholly inside one of `ranges` (not merely their union)."""
    for low, high in ranges:  # noqa: SIM110 - a plain loop: any() over a generator was a hot spot
        if low <= first and last <= high:
            return True
    return False


def _dedupe(rules: list[Any]) -> list[Any]:
    seen: set[str] = set()
    unique: list[Any] = []
    for entry in rules:
        value = entry.get("value") if _is_mapping(entry) else None
        if isinstance(value, str):
            if value in seen:
                continue
            seen.add(value)
        unique.append(entry)
    return unique


def _vnet_rules(ctx: _Context, rules: list[Any]) -> tuple[list[Any], bool]:
    policy = ctx.policy
    kept: list[Any] = []
    changed = False
    for entry in rules:
        subnet = entry.get("id") if isinstance(entry, Mapping) else None
        match = SUBNET_ID_RE.fullmatch(subnet) if isinstance(subnet, str) else None
        if match is None or not isinstance(subnet, str):
            shown = _text(subnet) if isinstance(entry, Mapping) else _text(entry)
            fixed = ctx.report(
                "vnet-rule-invalid", f"virtual network rule {shown!r} is not a subnet resource ID", shown
            )
        elif policy.vnet_policy_active and not policy.subnet_allowed(subnet, match.group("sub")):
            fixed = ctx.report(
                "vnet-rule-not-allowed",
                f"subnet {subnet} is outside allowed_vnet_subscriptions and allowed_subnets",
                subnet,
            )
        else:
            kept.append(entry)
            continue
        if fixed:
            changed = True
        else:
            kept.append(entry)
    return kept, changed


def evaluate(
    account: object,
    policy: Policy,
    now: dt.datetime,
    *,
    diagnostic_settings: Sequence[Mapping[str, Any]] | None = None,
) -> Evaluation | InvalidAccount:
    """Judge one account body against the policy at time `now`.

    `diagnostic_settings` are the account's diagnostic settings as ARM lists them; the
    diagnostics rule is judged only when they are given and the policy names a workspace.
    """
    try:
        return _evaluate(account, policy, now, diagnostic_settings)
    except Exception as error:  # guarantee 3: a malformed body never raises
        rid = account.get("id") if isinstance(account, Mapping) else None
        return InvalidAccount(
            f"cannot evaluate the body: {type(error).__name__}: {error}",
            rid if isinstance(rid, str) else None,
        )


def _evaluate(
    account: object,
    policy: Policy,
    now: dt.datetime,
    diagnostic_settings: Sequence[Mapping[str, Any]] | None,
) -> Evaluation | InvalidAccount:
    shape = _check_shape(account)
    if isinstance(shape, InvalidAccount):
        return shape
    resource_id, kind, properties = shape
    today = now.astimezone(dt.UTC).date() if now.tzinfo is not None else now.date()
    ctx = _Context(policy, resource_id, today)
    network = policy.network
    patch: dict[str, Any] = {}

    public = properties.get("publicNetworkAccess")
    public_disabled = isinstance(public, str) and public.lower() == "disabled"
    acls_in = properties.get("networkAcls")
    acls: dict[str, Any] | None = dict(acls_in) if isinstance(acls_in, Mapping) else None
    acls_changed = False

    # default-action-deny
    default_action = acls.get("defaultAction") if acls is not None else None
    if network.require_default_deny and not public_disabled:
        is_deny = isinstance(default_action, str) and default_action.lower() == "deny"
        if not is_deny:
            shown = "networkAcls absent" if acls is None else f"defaultAction {default_action}"
            if ctx.report(
                "default-action-deny",
                f"publicNetworkAccess is {public or 'Enabled (unset)'} and {shown}: every network is allowed",
                "absent" if acls is None else _text(default_action),
            ):
                acls_changed = True
                if acls is None:
                    allowed = policy.bypass_allowed(kind, resource_id)
                    acls = {
                        "defaultAction": "Deny",
                        "bypass": "AzureServices" if allowed else "None",
                        "ipRules": [],
                        "virtualNetworkRules": [],
                    }
                else:
                    acls["defaultAction"] = "Deny"

    # public-network-access
    if network.require_public_network_disabled and not public_disabled:
        if ctx.report(
            "public-network-access",
            f"publicNetworkAccess is {public or 'Enabled (unset)'}; the policy requires Disabled",
            public if isinstance(public, str) else None,
        ):
            patch["publicNetworkAccess"] = "Disabled"

    if acls is not None:
        ip_rules = acls.get("ipRules")
        if ip_rules:
            kept, changed = _ip_rules(ctx, ip_rules)
            if changed:
                acls["ipRules"] = kept
                acls_changed = True
            if len(kept) > MAX_IP_RULES:
                ctx.report(
                    "ip-rule-limit",
                    f"{len(kept)} IP rules remain after the fixes; ARM allows at most {MAX_IP_RULES}",
                    str(len(kept)),
                )
        vnet_rules = acls.get("virtualNetworkRules")
        if vnet_rules:
            kept_vnets, changed = _vnet_rules(ctx, vnet_rules)
            if changed:
                acls["virtualNetworkRules"] = kept_vnets
                acls_changed = True
            if len(kept_vnets) > MAX_VNET_RULES:
                ctx.report(
                    "vnet-rule-limit",
                    f"{len(kept_vnets)} virtual network rules; ARM allows at most {MAX_VNET_RULES}",
                    str(len(kept_vnets)),
                )
            if kept_vnets and not properties.get("customSubDomainName"):
                ctx.report(
                    "custom-subdomain-missing",
                    "virtual network rules are set but customSubDomainName is not: they cannot take effect",
                    None,
                )
        bypass = acls.get("bypass")
        # An unset bypass is taken as the wider AzureServices, as access_surface does.
        if (
            (bypass is None or (isinstance(bypass, str) and bypass.lower() == "azureservices"))
            and not policy.bypass_allowed(kind, resource_id)
            and ctx.report(
                "bypass-not-allowed",
                f"trusted Azure services may bypass the network rules"
                f"{'' if bypass else ' (bypass is unset)'}, and kind {kind or '(none)'} is not allowed to",
                bypass if isinstance(bypass, str) else "unset",
            )
        ):
            acls["bypass"] = "None"
            acls_changed = True

    # local-auth-enabled
    if policy.auth.require_local_auth_disabled and properties.get("disableLocalAuth") is not True:
        if ctx.report(
            "local-auth-enabled",
            "local (key) authentication is enabled; the policy requires disableLocalAuth true",
            _text(properties.get("disableLocalAuth", "unset")),
        ):
            patch["disableLocalAuth"] = True

    diagnostic_setting = None
    if policy.diagnostics is not None and diagnostic_settings is not None:
        diagnostic_setting = _diagnostics(ctx, diagnostic_settings)

    remediation: dict[str, Any] | None = None
    if acls_changed or patch:
        body = dict(patch)
        if acls is not None:
            # ARM replaces arrays, and OpenAI accounts refuse updates without networkAcls: send it whole.
            body["networkAcls"] = _copy_acls(acls)  # the body never shares objects with the account
        remediation = {"properties": body}
    return Evaluation(resource_id, kind, tuple(ctx.findings), remediation, diagnostic_setting)


def _copy_acls(acls: Mapping[str, Any]) -> dict[str, Any]:
    """A copy sharing nothing with `acls`; the rule entries are flat JSON objects, so a dict copy
    each is a full copy (a third of the cost of `copy.deepcopy` on a 20-rule account)."""
    copied: dict[str, Any] = {}
    for key, value in acls.items():
        if type(value) is list:
            copied[key] = [dict(e) if type(e) is dict and _flat(e) else copy.deepcopy(e) for e in value]
        elif isinstance(value, dict | list):
            copied[key] = copy.deepcopy(value)
        else:
            copied[key] = value
    return copied


def _flat(entry: dict[str, Any]) -> bool:
    return not any(isinstance(v, dict | list) for v in entry.values())


DIAGNOSTIC_SETTING_NAME: Final = "guardrail-audit"
_AUDIT_GROUPS: Final = frozenset({"audit", "alllogs"})


def _diagnostics(ctx: _Context, settings: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """diagnostics-missing: some setting must send `audit` (or `allLogs`) to the policy's workspace."""
    assert ctx.policy.diagnostics is not None
    workspace = ctx.policy.diagnostics.workspace_id
    for setting in settings:
        props = setting.get("properties") if isinstance(setting, Mapping) else None
        if not isinstance(props, Mapping):
            continue
        target = props.get("workspaceId")
        if not isinstance(target, str) or target.lower() != workspace.lower():
            continue
        logs = props.get("logs")
        for log in logs if isinstance(logs, list) else []:
            if not isinstance(log, Mapping) or log.get("enabled") is not True:
                continue
            group = log.get("categoryGroup")
            if isinstance(group, str) and group.lower() in _AUDIT_GROUPS:
                return None
    if ctx.report(
        "diagnostics-missing",
        f"no diagnostic setting sends the audit category group to {workspace}",
        workspace,
    ):
        return {
            "name": DIAGNOSTIC_SETTING_NAME,
            "properties": {
                "workspaceId": workspace,
                "logs": [{"categoryGroup": "audit", "enabled": True}],
            },
        }
    return None


# -- helpers for callers and tests -------------------------------------------------------------


def apply_patch(account: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """What ARM's PATCH does with `body`: top-level properties merged, each value (and so
    `networkAcls` and every array) replaced wholesale."""
    result = copy.deepcopy(dict(account))
    properties = result.get("properties")
    merged = dict(properties) if isinstance(properties, Mapping) else {}
    for key, value in (body.get("properties") or {}).items():
        merged[key] = copy.deepcopy(value)
    result["properties"] = merged
    for key in ("tags", "sku", "identity"):
        if key in body:
            result[key] = copy.deepcopy(body[key])
    return result


@dataclass(frozen=True, slots=True)
class AccessSurface:
    """What an account lets in over the network. `everything` = no network restriction."""

    everything: bool
    public_disabled: bool
    ranges: tuple[tuple[int, int], ...]
    subnets: frozenset[str]
    bypass: bool  # trusted Azure services may bypass the rules
    local_auth: bool


def access_surface(account: Mapping[str, Any]) -> AccessSurface:
    properties = account.get("properties")
    props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    local_auth = props.get("disableLocalAuth") is not True
    public = props.get("publicNetworkAccess")
    if isinstance(public, str) and public.lower() == "disabled":
        return AccessSurface(False, True, (), frozenset(), False, local_auth)
    acls = props.get("networkAcls")
    action = acls.get("defaultAction") if isinstance(acls, Mapping) else None
    if not isinstance(acls, Mapping) or not (isinstance(action, str) and action.lower() == "deny"):
        return AccessSurface(True, False, (), frozenset(), True, local_auth)
    ranges = []
    for entry in acls.get("ipRules") or []:
        parsed = ipv4.parse_rule(entry.get("value") if isinstance(entry, Mapping) else None)
        if parsed is not None:
            ranges.append((parsed.first, parsed.last))
    subnets = frozenset(
        entry["id"].lower()
        for entry in acls.get("virtualNetworkRules") or []
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str)
    )
    bypass = acls.get("bypass")
    # An unset bypass is taken as the wider AzureServices.
    lets_services_in = not (isinstance(bypass, str) and bypass.lower() == "none")
    return AccessSurface(False, False, tuple(ranges), subnets, lets_services_in, local_auth)


def widening(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Every way `after` allows more than `before` (empty: `after` is a subset of `before`)."""
    b, a = access_surface(before), access_surface(after)
    reasons: list[str] = []
    if a.local_auth and not b.local_auth:
        reasons.append("local authentication re-enabled")
    if a.public_disabled or b.everything:
        return reasons
    if a.everything:
        return [*reasons, "network access opened to every network"]
    if b.public_disabled:
        return [*reasons, "public network access re-enabled"]
    before_ranges = list(b.ranges)
    for first, last in a.ranges:
        if not ipv4.covered_by_union(ipv4.IPv4Rule(first, last, 0, True), before_ranges):
            reasons.append(f"IP range {ipv4.format_address(first)}-{ipv4.format_address(last)} added")
    for subnet in sorted(a.subnets - b.subnets):
        reasons.append(f"subnet {subnet} added")
    if a.bypass and not b.bypass:
        reasons.append("trusted-services bypass enabled")
    return reasons
