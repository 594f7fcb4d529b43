"""Azure resource IDs, in one place: the patterns the policy and the rules check, and the parsing of
account IDs the gateway, the findings and the loop use. A leaf module (standard library only), so
the rules need not import the policy, which imports the registry. (The event parser keeps its own,
stricter check of what an event may name: guardrail.events.resource_id_problem.)"""

from __future__ import annotations

import re
from typing import Final

GUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SUBNET_ID_RE: Final = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/Microsoft\.Network/"
    r"virtualNetworks/[^/]+/subnets/[^/]+",
    re.IGNORECASE,
)
ACCOUNT_ID_RE: Final = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.CognitiveServices/accounts/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def parse_account_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, account name) of a Cognitive Services account ID (exactly an
    account; a trailing slash is allowed). Raises ValueError naming the ID otherwise."""
    match = ACCOUNT_ID_RE.fullmatch(resource_id.strip().rstrip("/"))
    if match is None:
        raise ValueError(f"not a Microsoft.CognitiveServices/accounts resource ID: {resource_id!r}")
    return match["sub"], match["rg"], match["name"]


def parse_account_or_child(resource_id: str) -> tuple[str, str, str]:
    """As `parse_account_id`, for an account or any of its child resources
    (`.../accounts/a/deployments/d` gives account `a`)."""
    match = ACCOUNT_ID_RE.match(resource_id.strip())
    if match is None or resource_id.strip()[match.end() :][:1] not in ("", "/"):
        raise ValueError(f"not a Microsoft.CognitiveServices account resource ID: {resource_id!r}")
    return match["sub"], match["rg"], match["name"]


def subscription_of(resource_id: str) -> str:
    """The subscription of any ARM resource ID (`/subscriptions/{id}/...`), lower-cased; "" when the
    ID names none."""
    parts = resource_id.split("/")
    return parts[2].lower() if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""
