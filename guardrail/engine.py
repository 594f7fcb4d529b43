"""The policy engine: pure. (snapshot, policy, now) in; findings and the plan of actions out.

The snapshot is the account body and the child resources the policy's rules read
(`guardrail.actions.Snapshot`); the plan is an ordered tuple of typed actions (`Action`): the
account PATCH first (its exact body), then the rule modules' own calls (a private endpoint
connection to reject, a diagnostic setting to create, ...). It knows nothing of Azure SDKs and
performs no I/O. Guarantees (property-tested):
1. the plan never widens what the account allows;
2. it is a fixpoint: applying it and evaluating again gives no action;
3. evaluation never raises on a malformed body: it returns findings or an `InvalidAccount`.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from guardrail.actions import PATCH_ACCOUNT, Action, ChildRead, Snapshot
from guardrail.memo import PerObject
from guardrail.policy import ACCOUNT_ID_RE, Policy
from guardrail.rules import (
    ACTION_TYPES,
    BY_ID,
    CHILD_READS,
    PROPERTY_TYPES,
    SEVERITIES,
    SURFACE,
    UNITS,
    Context,
    Finding,
)
from guardrail.wellformed import wrong_type

ACCOUNT_TYPE: Final = "microsoft.cognitiveservices/accounts"

__all__ = [
    "AccessSurface",
    "Evaluation",
    "Finding",
    "InvalidAccount",
    "access_surface",
    "action_widening",
    "apply_patch",
    "children_for",
    "evaluate",
    "plan",
    "widening",
]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The findings and the plan: `actions` in the order they are to be made."""

    resource_id: str
    kind: str
    findings: tuple[Finding, ...]
    actions: tuple[Action, ...] = ()

    @property
    def remediation(self) -> dict[str, Any] | None:
        """The account PATCH body (the plan's `patch-account` action), None when there is none."""
        for action in self.actions:
            if action.kind == PATCH_ACCOUNT.kind:
                return action.body
        return None

    @property
    def private_endpoint_rejections(self) -> tuple[str, ...]:
        """The private endpoint connections (resource IDs) the plan rejects, each a call of its own."""
        return tuple(action.target for action in self.actions if action.kind == "reject-private-endpoint")

    @property
    def compliant(self) -> bool:
        return all(finding.exempted for finding in self.findings)

    @property
    def active(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if not finding.exempted)

    def to_json(self) -> dict[str, Any]:
        """`guardrail evaluate --format json`'s object (a public interface). `remediation` and
        `private_endpoint_rejections` are derived from `actions`, kept for one release."""
        return {
            "resource_id": self.resource_id,
            "compliant": self.compliant,
            "findings": [finding.to_json() for finding in self.findings],
            "actions": [action.to_json() for action in self.actions],
            "remediation": self.remediation,
            "private_endpoint_rejections": list(self.private_endpoint_rejections),
        }


@dataclass(frozen=True, slots=True)
class InvalidAccount:
    """The body is not an account the guardrail can judge; nothing may be written."""

    message: str
    resource_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "error": self.message}


def _check_shape(account: object) -> InvalidAccount | tuple[str, str, Mapping[str, Any]]:
    if type(account) is not dict and not isinstance(account, Mapping):  # (the ABC check is slow)
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
    if type(properties) is not dict and not isinstance(properties, Mapping):
        return InvalidAccount(f"'properties' must be an object (got {type(properties).__name__})", rid)
    wrong = wrong_type(properties, _TOP_TYPES, "properties.")
    acls = properties.get("networkAcls")
    if wrong is None and acls is not None:
        wrong = wrong_type(acls, _ACL_TYPES, "properties.networkAcls.")
    if wrong is not None:
        return InvalidAccount(wrong, rid)
    return rid, kind or "", properties


#: The property types the rules declare (`RuleUnit.properties`): top level, and inside networkAcls.
_TOP_TYPES: Final = tuple((name, kind) for name, kind in PROPERTY_TYPES.items() if "." not in name)
_ACL_TYPES: Final = tuple(
    (name.removeprefix("networkAcls."), kind)
    for name, kind in PROPERTY_TYPES.items()
    if name.startswith("networkAcls.")
)


def plan(snapshot: Snapshot, policy: Policy, now: dt.datetime) -> Evaluation | InvalidAccount:
    """Judge a snapshot (the account and the child resources read for the policy's rules)."""
    return evaluate(snapshot.account, policy, now, children=snapshot.children)


def _build_children_for(policy: Policy) -> tuple[ChildRead, ...]:
    return tuple(read for read in CHILD_READS if read.on(policy))


#: The child resources the policy's rules read (none: the snapshot is the account alone).
children_for: PerObject[tuple[ChildRead, ...]] = PerObject(_build_children_for)


def evaluate(
    account: object,
    policy: Policy,
    now: dt.datetime,
    *,
    diagnostic_settings: Sequence[Mapping[str, Any]] | None = None,
    children: Mapping[str, Any] | None = None,
) -> Evaluation | InvalidAccount:
    """Judge one account body against the policy at time `now`.

    `children` are the child resources read for the policy's rules, by `ChildRead.key` (a rule
    that needs one judges only when it is there); `diagnostic_settings` is the same as
    `children={"diagnosticSettings": ...}`.
    """
    if diagnostic_settings is not None:
        children = {**(children or {}), "diagnosticSettings": diagnostic_settings}
    try:
        return _evaluate(account, policy, now, children or _NO_CHILDREN)
    except Exception as error:  # guarantee 3: a malformed body never raises
        rid = account.get("id") if isinstance(account, Mapping) else None
        return InvalidAccount(
            f"cannot evaluate the body: {type(error).__name__}: {error}",
            rid if isinstance(rid, str) else None,
        )


_NO_CHILDREN: Final[Mapping[str, Any]] = {}


def _evaluate(
    account: object,
    policy: Policy,
    now: dt.datetime,
    children: Mapping[str, Any],
) -> Evaluation | InvalidAccount:
    shape = _check_shape(account)
    if isinstance(shape, InvalidAccount):
        return shape
    resource_id, kind, properties = shape
    today = now.astimezone(dt.UTC).date() if now.tzinfo is not None else now.date()
    public = properties.get("publicNetworkAccess")
    acls_in = properties.get("networkAcls")
    ctx = Context(
        policy,
        resource_id,
        kind,
        today,
        properties,
        dict(acls_in) if type(acls_in) is dict or isinstance(acls_in, Mapping) else None,
        isinstance(public, str) and public.lower() == "disabled",
        children,
        SEVERITIES,
    )
    for check in _checks_for(policy):
        check(ctx)

    findings = tuple(ctx.findings)
    patch = ctx.patch
    if not (ctx.acls_changed or patch):
        return Evaluation(resource_id, kind, findings, tuple(ctx.actions))
    body = dict(patch)
    acls = ctx.acls
    if acls is not None:
        # ARM replaces arrays, and OpenAI accounts refuse updates without networkAcls: send it whole.
        body["networkAcls"] = _copy_acls(acls)  # the body never shares objects with the account
    patched = [f for f in findings if f.fixed and BY_ID[f.rule].action == PATCH_ACCOUNT.kind]
    account_patch = Action(
        PATCH_ACCOUNT.kind,
        PATCH_ACCOUNT.method,
        resource_id,
        {"properties": body},
        tuple(dict.fromkeys(f.rule for f in patched)),
        tuple(f.value for f in patched),
    )
    return Evaluation(resource_id, kind, findings, (account_patch, *ctx.actions))


def _build_checks(policy: Policy) -> tuple[Callable[[Context], None], ...]:
    """The checks of the units with at least one rule the policy turns on (`Rule.on`); a unit whose
    rules are all off would report nothing (property-tested), so it is not called at all."""
    return tuple(unit.check for unit in UNITS if any(rule.on(policy) for rule in unit.rules))


_checks_for: PerObject[tuple[Callable[[Context], None], ...]] = PerObject(_build_checks)


def _copy_acls(acls: Mapping[str, Any]) -> dict[str, Any]:
    """A copy sharing nothing with `acls`. The rule entries are flat JSON objects: a dict copy each
    is a full copy (a third of the cost of `copy.deepcopy` on a 20-rule account), checked by a loop
    over the values' exact types (121 ns per IP rule against 373 ns for `dict(e)` after
    `any(isinstance(v, dict | list) ...)`; timeit, load 3.4), inline: this runs for every entry of
    every account with a remediation."""
    copied: dict[str, Any] = {}
    scalars = _SCALARS
    deepcopy = copy.deepcopy
    for key, value in acls.items():
        if type(value) is list:
            entries: list[Any] = []
            for entry in value:
                if type(entry) is dict:
                    for item in entry.values():
                        if type(item) not in scalars:
                            entries.append(deepcopy(entry))
                            break
                    else:
                        entries.append(entry.copy())
                else:
                    entries.append(deepcopy(entry))
            copied[key] = entries
        elif isinstance(value, dict | list):
            copied[key] = deepcopy(value)
        else:
            copied[key] = value
    return copied


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


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
    """What an account lets in (and out), part by part as the rule modules model it.

    `network` (the gate) is "all", "private-only" or "rules"; the other parts are named by their
    rule modules (`ranges`, `subnets`, `bypass`, `local_auth`, ...) and read as attributes."""

    network: str
    parts: Mapping[str, Any]

    @property
    def everything(self) -> bool:
        """No network restriction at all."""
        return self.network == "all"

    @property
    def public_disabled(self) -> bool:
        return self.network == "private-only"

    def __getattr__(self, name: str) -> Any:
        try:
            return self.parts[name]
        except KeyError:
            raise AttributeError(name) from None


def access_surface(account: Mapping[str, Any]) -> AccessSurface:
    properties = account.get("properties")
    props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    acls_in = props.get("networkAcls")
    acls = acls_in if isinstance(acls_in, Mapping) else None
    network = "all"
    parts: dict[str, Any] = {}
    for part in SURFACE:
        value = part.read(props, acls)
        if part.scope == "gate":
            network = value
        else:
            parts[part.name] = value
    return AccessSurface(network, parts)


def action_widening(snapshot: Snapshot, action: Action) -> list[str]:
    """Every way one action of a plan would let more in (or out) than the snapshot does: its
    type's guard (an unknown type, or a method its type does not have, is refused), and for the
    account PATCH the registry's widening model over the account as ARM would merge the body."""
    action_type = ACTION_TYPES.get(action.kind)
    if action_type is None or action_type.method != action.method:
        return [f"{action.kind} {action.method} is not an action type the guard knows"]
    reasons = action_type.widens(snapshot, action)
    if action.kind == PATCH_ACCOUNT.kind and action.body is not None and not reasons:
        reasons += widening(snapshot.account, apply_patch(snapshot.account, action.body))
    return reasons


def widening(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Every way `after` allows more than `before` (empty: `after` is a subset of `before`)."""
    b, a = access_surface(before), access_surface(after)
    reasons: list[str] = []
    for part in SURFACE:
        if part.scope == "account":
            reasons += part.widened(b.parts[part.name], a.parts[part.name])
    for part in SURFACE:
        if part.scope == "gate":
            reasons += part.widened(b.network, a.network)
    if b.network == a.network == "rules":
        for part in SURFACE:
            if part.scope == "network":
                reasons += part.widened(b.parts[part.name], a.parts[part.name])
    return reasons
