"""The rule registry: one rule (or a tight family of rules) per module in this package.

Each module defines `UNIT`, a `RuleUnit`: its rules' metadata (ID, severity, what violates it,
the fix, whether it is fixed by default, the policy switch, the alert phrase), its check over the
evaluation state, and its part of the widening model. The registry finds every module here (those
whose names do not start with `_`) and orders them by `UNIT.order`, which is the order of
evaluation and of the findings. The engine is a loop over `UNITS`; the policy's `remediate` keys
and defaults, `guardrail rules` and the docs' rule table come from `RULES`.

Rule IDs are a public interface: never rename one.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Final

from guardrail.actions import PATCH_ACCOUNT, ActionType, ChildRead
from guardrail.rules._base import (
    Context,
    Finding,
    PropertyType,
    Rule,
    RuleUnit,
    Severity,
    SurfacePart,
    text,
)


def _discover() -> tuple[RuleUnit, ...]:
    units = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        unit = getattr(importlib.import_module(f"{__name__}.{info.name}"), "UNIT", None)
        if not isinstance(unit, RuleUnit):
            raise TypeError(f"guardrail.rules.{info.name} defines no UNIT (a RuleUnit)")
        units.append(unit)
    units.sort(key=lambda unit: unit.order)
    orders = [unit.order for unit in units]
    if len(set(orders)) != len(orders):
        raise ValueError(f"two rule modules share an order: {orders}")
    return tuple(units)


UNITS: Final[tuple[RuleUnit, ...]] = _discover()
RULES: Final[tuple[Rule, ...]] = tuple(rule for unit in UNITS for rule in unit.rules)
BY_ID: Final[dict[str, Rule]] = {rule.id: rule for rule in RULES}
if len(BY_ID) != len(RULES):
    raise ValueError("two rules share an ID")
RULE_IDS: Final[tuple[str, ...]] = tuple(BY_ID)
FIXABLE_RULES: Final[tuple[str, ...]] = tuple(rule.id for rule in RULES if rule.fix is not None)
REMEDIATE_DEFAULTS: Final[dict[str, bool]] = {rule.id: rule.remediate_by_default for rule in RULES}
SEVERITIES: Final[dict[str, Severity]] = {rule.id: rule.severity for rule in RULES}
SURFACE: Final[tuple[SurfacePart, ...]] = tuple(part for unit in UNITS for part in unit.surface)


def _action_types() -> dict[str, ActionType]:
    types: dict[str, ActionType] = {PATCH_ACCOUNT.kind: PATCH_ACCOUNT}
    for unit in UNITS:
        for action_type in unit.actions:
            if action_type.kind in types:
                raise ValueError(f"two rule modules declare the action type {action_type.kind}")
            types[action_type.kind] = action_type
    for rule in RULES:
        if rule.fix is not None and rule.action not in types:
            raise ValueError(f"rule {rule.id} is fixed by {rule.action}, which no rule module declares")
    return types


#: Every kind of write the guardrail may make, by kind: the account PATCH and the rule modules' own.
ACTION_TYPES: Final[dict[str, ActionType]] = _action_types()
#: The account properties the rules read, with their JSON types (`networkAcls.<key>` for the keys
#: inside networkAcls); a body with another type there is not judged.
PROPERTY_TYPES: Final[dict[str, PropertyType]] = {
    name: kind for unit in UNITS for name, kind in unit.properties
}
#: The account properties an account PATCH may set (the journal keeps them as read).
WRITTEN_PROPERTIES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(name for unit in UNITS for name in unit.writes)
)
#: The child resources the rules read (each only when a rule that needs it is on).
CHILD_READS: Final[tuple[ChildRead, ...]] = tuple(read for unit in UNITS for read in unit.reads)

from guardrail.rules.ip import MAX_IP_RULES  # noqa: E402 - after discovery, which imported it
from guardrail.rules.vnet import MAX_VNET_RULES  # noqa: E402

TABLE_HEADER: Final = ("rule", "severity", "on when", "violated when", "fix", "fixed by default")


def table_rows() -> list[tuple[str, str, str, str, str, str]]:
    """One row per rule, in evaluation order, as `guardrail rules` and docs/rules.md show them."""
    return [
        (
            rule.id,
            rule.severity,
            rule.switch,
            rule.summary,
            rule.fix or "report only",
            ("yes" if rule.remediate_by_default else "no") if rule.fix else "—",
        )
        for rule in RULES
    ]


def table_markdown() -> str:
    """The rule table in Markdown (docs/rules.md holds exactly this, checked by a test)."""

    def cell(value: str, code: bool = False) -> str:
        value = value.replace("|", "\\|")
        return f"`{value}`" if code else value

    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    for rid, severity, switch, summary, fix, default in table_rows():
        cells = (cell(rid, True), severity, cell(switch), cell(summary), cell(fix), default)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_text() -> str:
    """The rule table as aligned plain text (`guardrail rules`)."""
    header = tuple(h.upper() for h in TABLE_HEADER)
    rows = [header, *table_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    # the long "violated when" column is last so the rest stays aligned
    order = (0, 1, 5, 2, 4, 3)
    out = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in order[:-1]]
        out.append("  ".join([*cells, row[order[-1]]]).rstrip())
    return "\n".join(out) + "\n"


__all__ = [
    "BY_ID",
    "FIXABLE_RULES",
    "MAX_IP_RULES",
    "MAX_VNET_RULES",
    "REMEDIATE_DEFAULTS",
    "RULES",
    "RULE_IDS",
    "SEVERITIES",
    "SURFACE",
    "UNITS",
    "Context",
    "Finding",
    "Rule",
    "RuleUnit",
    "Severity",
    "SurfacePart",
    "table_markdown",
    "table_text",
    "text",
]
