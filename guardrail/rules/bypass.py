"""bypass-not-allowed: trusted Azure services may pass the network rules unless bypass is None.
Any other value (AzureServices, unset, or a list such as "Logging, Metrics, AzureServices") is
taken as the wider setting. Widening part: whether services may bypass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guardrail.rules._base import Context, Rule, RuleUnit, SurfacePart, text, turned_on

BYPASS_NOT_ALLOWED = Rule(
    "bypass-not-allowed",
    "medium",
    "set networkAcls.bypass to None",
    True,
    "bypass is not None (AzureServices, unset or any other value) and neither the kind nor the "
    "account is allowed it",
)


def is_none(bypass: object) -> bool:
    """Only `None` (as ARM compares enums: case-insensitively) keeps trusted services out."""
    return isinstance(bypass, str) and bypass.lower() == "none"


def check(ctx: Context) -> None:
    acls = ctx.acls
    if acls is None:
        return
    bypass = acls.get("bypass")
    if is_none(bypass) or ctx.policy.bypass_allowed(ctx.kind, ctx.resource_id):
        return
    if bypass is None:
        said = " (bypass is unset)"
    elif isinstance(bypass, str) and bypass.lower() == "azureservices":
        said = ""
    else:
        said = f" (bypass is {text(bypass)!r})"
    if ctx.report(
        BYPASS_NOT_ALLOWED.id,
        f"trusted Azure services may bypass the network rules{said}, "
        f"and kind {ctx.kind or '(none)'} is not allowed to",
        text(bypass) if bypass is not None else "unset",
    ):
        acls["bypass"] = "None"
        ctx.acls_changed = True


def _bypass(props: Mapping[str, Any], acls: Mapping[str, Any] | None) -> bool:
    return acls is None or not is_none(acls.get("bypass"))


UNIT = RuleUnit(
    order=50,
    rules=(BYPASS_NOT_ALLOWED,),
    check=check,
    surface=(SurfacePart("bypass", "network", _bypass, turned_on("trusted-services bypass enabled")),),
    properties=(("networkAcls", (dict, Mapping)), ("networkAcls.bypass", str)),
    writes=("networkAcls",),
)
