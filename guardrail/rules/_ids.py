"""Resource ID patterns the rules and the policy share (kept here so the rule modules need not
import the policy module, which imports the registry)."""

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
