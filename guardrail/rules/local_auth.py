"""local-auth-enabled: the policy may require key authentication off. Widening part: whether
keys are accepted (compared whatever the network allows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guardrail.rules._base import Context, Rule, RuleUnit, SurfacePart, text, turned_on

_UNSET: Any = object()

LOCAL_AUTH_ENABLED = Rule(
    "local-auth-enabled",
    "medium",
    "set disableLocalAuth to true",
    False,
    "the policy requires local (key) auth disabled and disableLocalAuth is not true",
    switch="auth.require_local_auth_disabled",
    on=lambda policy: policy.auth.require_local_auth_disabled,
    alert="disableLocalAuth → true (keys no longer accepted)",
    shows="disableLocalAuth",
)


def check(ctx: Context) -> None:
    if not ctx.policy.auth.require_local_auth_disabled:
        return
    value = ctx.properties.get("disableLocalAuth", _UNSET)
    if value is True:
        return
    if ctx.report(
        LOCAL_AUTH_ENABLED.id,
        "local (key) authentication is enabled; the policy requires disableLocalAuth true",
        "unset" if value is _UNSET else text(value),
    ):
        ctx.patch["disableLocalAuth"] = True


def _local_auth(props: Mapping[str, Any], acls: Mapping[str, Any] | None) -> bool:
    return props.get("disableLocalAuth") is not True


UNIT = RuleUnit(
    order=60,
    rules=(LOCAL_AUTH_ENABLED,),
    check=check,
    surface=(
        SurfacePart("local_auth", "account", _local_auth, turned_on("local authentication re-enabled")),
    ),
    properties=(("disableLocalAuth", bool),),
    writes=("disableLocalAuth",),
)
