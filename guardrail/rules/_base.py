"""What a rule module is made of: its metadata (`Rule`), its check over the evaluation state
(`Context`), and its part of the widening model (`SurfacePart`). Pure: no I/O, no Azure SDK."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from guardrail.actions import Action, ActionType, ChildRead
from guardrail.memo import PerObject
from guardrail.vocabulary import Severity as Severity

if TYPE_CHECKING:
    from guardrail.policy import Policy


def _always(policy: Policy) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule's public metadata. The ID is a public interface: never rename one."""

    id: str
    severity: Severity
    fix: str | None  # what the remediation does; None = report only
    remediate_by_default: bool
    summary: str  # violated when
    switch: str = "always"  # the policy key that turns the rule on, as the docs spell it
    on: Callable[[Policy], bool] = _always  # whether the policy turns the rule on
    alert: str | Callable[[Sequence[str]], str] | None = None
    """What an alert says was changed when this rule is fixed, for a fix outside `networkAcls`
    (changes to `networkAcls` are phrased from its before/after): a fixed phrase, or one built from
    the values of the rule's fixed findings (which endpoint was rejected, which entry stripped)."""
    action: str = "patch-account"
    """The kind of action (`guardrail.actions`) that repairs this rule's findings."""
    shows: str | None = None
    """The account property a finding record shows as Before/After: None for `networkAcls`;
    `@action` for a rule fixed by writing a resource of its own (Before null, After what was written)."""

    def alert_phrase(self, values: Sequence[str]) -> str | None:
        """The alert's "changes" phrase for this rule's fixed findings, whose values are `values`
        (distinct, in order); None when the rule's fix is phrased from networkAcls or absent."""
        if self.alert is None or isinstance(self.alert, str):
            return self.alert
        return self.alert(values)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
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


class Context:
    """The evaluation of one account as the rule checks see it: the account (read only), the
    policy, and what the checks build: findings, the PATCH body and the other actions.

    A plain class with slots (not a dataclass with default factories): one is made per account,
    on the engine's hot path."""

    __slots__ = (
        "acls",
        "acls_changed",
        "actions",
        "children",
        "decisions",
        "findings",
        "kind",
        "patch",
        "policy",
        "properties",
        "public_disabled",
        "resource_id",
        "rulings",
        "severities",
        "today",
    )

    def __init__(
        self,
        policy: Policy,
        resource_id: str,
        kind: str,
        today: dt.date,
        properties: Mapping[str, Any],
        acls: dict[str, Any] | None,
        public_disabled: bool,
        children: Mapping[str, Any],
        severities: Mapping[str, Severity],
    ) -> None:
        self.policy = policy
        self.resource_id = resource_id
        self.kind = kind
        self.today = today
        self.properties = properties
        # a copy of the account's networkAcls (None when absent): checks edit it, the engine sends it whole
        self.acls = acls
        self.public_disabled = public_disabled
        self.children = children  # the child resources read, by ChildRead.key (absent: not read)
        self.severities = severities
        self.findings: list[Finding] = []
        # rule -> (severity, exempted, fixed): the same for every finding of a rule on this account,
        # and for the rules no exemption can cover, the same on every account (`rulings`)
        self.decisions: dict[str, tuple[Severity, bool, bool]] = {}
        self.rulings = _RULINGS(policy)(severities)
        self.patch: dict[str, Any] = {}  # top-level properties besides networkAcls
        self.acls_changed = False
        self.actions: list[Action] = []  # the plan's actions besides the account PATCH, in order

    def act(self, action: Action) -> None:
        """Add an action to the plan; a second action of the same kind on the same target (a child
        listed twice) is one call, repairing both findings."""
        key = (action.kind, action.target.lower())
        for index, known in enumerate(self.actions):
            if (known.kind, known.target.lower()) == key:
                merged = Action(
                    known.kind,
                    known.method,
                    known.target,
                    known.body,
                    tuple(dict.fromkeys(known.rules + action.rules)),
                    known.values + action.values,
                )
                self.actions[index] = merged
                return
        self.actions.append(action)

    def edit_acl_list(
        self, key: str, classify: Callable[[Context, list[Any]], tuple[list[Any], bool]]
    ) -> list[Any] | None:
        """Run a rule family's `classify` over `networkAcls[key]` (None when absent or empty); keep
        what it keeps in the body, and return that."""
        acls = self.acls
        entries = acls.get(key) if acls is not None else None
        if not entries or acls is None:
            return None
        kept, changed = classify(self, entries)
        if changed:
            acls[key] = kept
            self.acls_changed = True
        return kept

    def report(self, rule: str, message: str, value: str | None, *, can_fix: bool = True) -> bool:
        """Record a finding; True when the remediation should repair it. `can_fix=False`: this
        finding cannot be repaired (the policy's switch notwithstanding), so it is not `fixed`."""
        decision = self.rulings.get(rule) or self.decisions.get(rule) or self._decide(rule)
        severity, exempted, fixed = decision
        fixed = fixed and can_fix
        self.findings.append(_new_finding(rule, severity, message, value, exempted, fixed))
        return fixed

    def _decide(self, rule: str) -> tuple[Severity, bool, bool]:
        """The rule's (severity, exempted, fixed) on this account, remembered: for the account when
        an exemption of the policy may cover the rule, for the policy when none can."""
        policy = self.policy
        exemptible = _exemptible_rules(policy)
        if exemptible is None or rule in exemptible:
            exempted = policy.exemption_for(self.resource_id, rule, self.today) is not None
            decision = (self.severities[rule], exempted, not exempted and policy.remediates(rule))
            self.decisions[rule] = decision
        else:
            decision = (self.severities[rule], False, policy.remediates(rule))
            self.rulings[rule] = decision
        return decision


def _build_exemptible_rules(policy: Policy) -> frozenset[str] | None:
    """The rules an exemption of the policy may cover (None: any rule): for the others no account
    has an exemption to look for (`Exemption.covers` requires the rule or "*")."""
    named = frozenset(rule for exemption in policy.exemptions for rule in exemption.rules)
    return None if "*" in named else named


_exemptible_rules: PerObject[frozenset[str] | None] = PerObject(_build_exemptible_rules)


# The decisions of the rules no exemption of the policy can cover (the same on every account), per
# policy and severities: an empty table each, filled as accounts are judged.
_RULINGS: PerObject[PerObject[dict[str, tuple[Severity, bool, bool]]]] = PerObject(
    lambda policy: PerObject(lambda severities: {})
)


_FINDING_SLOTS = tuple(Finding.__dict__[name].__set__ for name in Finding.__slots__)
assert Finding.__slots__ == ("rule", "severity", "message", "value", "exempted", "fixed")


def _new_finding(
    rule: str, severity: Severity, message: str, value: str | None, exempted: bool, fixed: bool
) -> Finding:
    """`Finding(...)`, built through its slots: half the cost of the frozen dataclass's `__init__`
    (one `object.__setattr__` call per field), and a finding is made per violation on the hot path."""
    finding = _object_new(Finding)
    set_rule, set_severity, set_message, set_value, set_exempted, set_fixed = _FINDING_SLOTS
    set_rule(finding, rule)
    set_severity(finding, severity)
    set_message(finding, message)
    set_value(finding, value)
    set_exempted(finding, exempted)
    set_fixed(finding, fixed)
    return finding


_object_new = object.__new__


Scope = Literal["account", "gate", "network"]


@dataclass(frozen=True, slots=True)
class SurfacePart:
    """A rule's part of what an account lets in (or out), for the widening check.

    scope `account`: always compared; `gate`: the one part saying whether the network is open to
    everything, closed to all but private endpoints, or restricted by rules; `network`: compared
    only when the gate says "rules" before and after."""

    name: str
    scope: Scope
    read: Callable[[Mapping[str, Any], Mapping[str, Any] | None], Any]  # (properties, networkAcls)
    widened: Callable[[Any, Any], list[str]]  # (before, after) -> reasons `after` allows more


PropertyType = type | tuple[type, ...]


@dataclass(frozen=True, slots=True)
class RuleUnit:
    """One module of the registry: a rule or a tight family of rules, checked in `order`, with
    its whole contract: the account properties it reads (and their JSON types: a body with another
    type is not judged), those its fix writes in the account PATCH, the child resources it reads,
    the action types its fixes use, and its part of the widening model."""

    order: int
    rules: tuple[Rule, ...]
    check: Callable[[Context], None]
    surface: tuple[SurfacePart, ...] = ()
    properties: tuple[tuple[str, PropertyType], ...] = ()
    writes: tuple[str, ...] = ()
    reads: tuple[ChildRead, ...] = ()
    actions: tuple[ActionType, ...] = ()


def turned_on(reason: str) -> Callable[[bool, bool], list[str]]:
    """A `SurfacePart.widened` for a yes/no part: `reason` when it goes from off to on."""

    def widened(before: bool, after: bool) -> list[str]:
        return [reason] if after and not before else []

    return widened


def text(value: object) -> str:
    """A finding value as text: strings as they are, anything else in JSON spelling."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return repr(value)
