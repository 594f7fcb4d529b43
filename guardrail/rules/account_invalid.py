"""account-invalid: a body the guardrail cannot judge (report only). The engine answers such a body
with `InvalidAccount` rather than findings; the service records this rule for it, with the message
naming the field (`guardrail.wellformed` finds it), and for an account ARM refuses to let it read
(401/403). Nothing is ever written for it."""

from __future__ import annotations

from guardrail.rules._base import Context, Rule, RuleUnit

ACCOUNT_INVALID = Rule(
    "account-invalid",
    "medium",
    None,
    False,
    "the guardrail cannot judge the account: the body ARM returned is not a well-formed account (a "
    "string inside ipRules or virtualNetworkRules, a string sku, list tags, an unparsable systemData "
    'time, disableLocalAuth "yes", ...: the message names the field), or ARM refuses to let it be '
    "read (status remediation-failed, the message names the cause, e.g. AuthorizationFailed; the "
    "sweep retries it)",
)


def check(ctx: Context) -> None:
    """Nothing to check on a body the engine could judge: the service records the rule."""


UNIT = RuleUnit(order=5, rules=(ACCOUNT_INVALID,), check=check)
