"""Rule IDs and their metadata. The IDs are a public interface: never rename one."""

from __future__ import annotations

from typing import Final, NamedTuple


class Rule(NamedTuple):
    id: str
    severity: str  # critical | high | medium | low
    fix: str | None  # what the remediation does; None = report only
    remediate_by_default: bool
    summary: str


RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "default-action-deny",
        "high",
        "set networkAcls.defaultAction to Deny",
        True,
        "publicNetworkAccess is not Disabled and networkAcls is absent or its defaultAction is not Deny",
    ),
    Rule(
        "public-network-access",
        "high",
        "set publicNetworkAccess to Disabled",
        False,
        "the policy requires publicNetworkAccess Disabled and it is not",
    ),
    Rule(
        "ip-rule-invalid", "medium", "strip the rule", True, "an IP rule is not an IPv4 address or IPv4 CIDR"
    ),
    Rule("ip-rule-not-public", "high", "strip the rule", True, "an IP rule overlaps non-public IPv4 space"),
    Rule(
        "ip-rule-too-broad",
        "high",
        "strip the rule",
        True,
        "an IP rule's prefix is shorter than min_prefix_length",
    ),
    Rule(
        "ip-rule-not-allowlisted",
        "high",
        "strip the rule",
        True,
        "an IP rule is not wholly inside one of allowed_ip_ranges",
    ),
    Rule(
        "ip-rule-prefix-unsupported",
        "low",
        "rewrite /32 as the address, /31 as its two addresses",
        True,
        "an IP rule is written as a /32 or /31 CIDR, which ARM refuses",
    ),
    Rule("ip-rule-limit", "medium", None, False, "more than 100 IP rules remain after the fixes"),
    Rule(
        "vnet-rule-invalid",
        "medium",
        "strip the rule",
        True,
        "a virtual network rule's id is not a subnet resource ID",
    ),
    Rule(
        "vnet-rule-not-allowed",
        "high",
        "strip the rule",
        True,
        "a subnet outside allowed_vnet_subscriptions and not in allowed_subnets",
    ),
    Rule("vnet-rule-limit", "medium", None, False, "more than 100 virtual network rules"),
    Rule(
        "bypass-not-allowed",
        "medium",
        "set networkAcls.bypass to None",
        True,
        "bypass is AzureServices and neither the kind nor the account is allowed it",
    ),
    Rule(
        "custom-subdomain-missing",
        "low",
        None,
        False,
        "virtual network rules are present but customSubDomainName is not set",
    ),
    Rule(
        "local-auth-enabled",
        "medium",
        "set disableLocalAuth to true",
        False,
        "the policy requires local (key) auth disabled and disableLocalAuth is not true",
    ),
    Rule(
        "diagnostics-missing",
        "medium",
        "create a diagnostic setting sending audit logs to the workspace",
        True,
        "no diagnostic setting sends the audit (or allLogs) category group to the policy's workspace",
    ),
    Rule(
        "account-invalid",
        "medium",
        None,
        False,
        "the guardrail cannot judge the account: its body is not a well-formed account (the message "
        "names the field) or ARM refuses to let it be read",
    ),
)

BY_ID: Final[dict[str, Rule]] = {rule.id: rule for rule in RULES}
RULE_IDS: Final[tuple[str, ...]] = tuple(BY_ID)
FIXABLE_RULES: Final[tuple[str, ...]] = tuple(rule.id for rule in RULES if rule.fix is not None)
REMEDIATE_DEFAULTS: Final[dict[str, bool]] = {rule.id: rule.remediate_by_default for rule in RULES}
SEVERITY_ORDER: Final[dict[str, int]] = {"critical": 4, "high": 3, "medium": 2, "low": 1}

MAX_IP_RULES: Final = 100
MAX_VNET_RULES: Final = 100
