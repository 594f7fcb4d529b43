"""The plan's vocabulary: what the guardrail may do to an account, as data. Pure: no I/O.

The engine turns (snapshot, policy, now) into findings and a plan: an ordered tuple of `Action`s,
each one ARM call with its target (a full resource ID), method, body and the rules whose findings
it repairs. Every action is of a registered `ActionType`, declared by the rule module that needs
it (the account PATCH, which several rule modules share, is declared here): its method, what it
does in words, and the guard's judgement of whether a body of that type would widen access. The
reconciler executes a plan in order, reads the snapshot again once and verifies each action by
planning again: an action has landed when the fresh snapshot no longer needs it (the engine is a
fixpoint), unless its type says otherwise (`ActionType.landed`).

The account and the child resources the rules read are one `Snapshot`; each rule module declares
the child resources it reads (`ChildRead`) so that the gateway reads exactly those, and only when
a rule that needs them is on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from guardrail.policy import Policy

Method = Literal["PATCH", "PUT", "DELETE"]

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the reconciler read of one account: its body as ARM returned it, and the child
    resources the policy's rules read, by `ChildRead.key` (a missing child: None or [])."""

    account: Mapping[str, Any]
    children: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def resource_id(self) -> str:
        rid = self.account.get("id")
        return rid if isinstance(rid, str) else ""

    def child(self, key: str) -> Any:
        return self.children.get(key)


@dataclass(frozen=True, slots=True)
class ChildRead:
    """A child (or extension) resource of the account that a rule module reads.

    `path` is relative to the account's ID (`managedNetworks/default`,
    `providers/Microsoft.Insights/diagnosticSettings`); `many`: a list (ARM's `value`, all pages),
    else one body (None when it does not exist); `action`: the RBAC action the read needs
    (`guardrail.permissions` lists it). Read only when `on(policy)`, and only for the accounts it
    `applies` to (e.g. Foundry accounts: no other account has a managed network)."""

    key: str
    path: str
    api_version: str
    many: bool
    on: Callable[[Policy], bool]
    action: str
    applies: Callable[[Mapping[str, Any]], bool] = lambda account: True


def is_foundry(account: Mapping[str, Any]) -> bool:
    """A Foundry account (`kind: AIServices` with `allowProjectManagement: true`): the one kind that
    has projects, agents, capability hosts and a managed network."""
    kind = account.get("kind")
    props = account.get("properties")
    return (
        isinstance(kind, str)
        and kind.lower() == "aiservices"
        and isinstance(props, Mapping)
        and props.get("allowProjectManagement") is True
    )


@dataclass(frozen=True, slots=True)
class Action:
    """One ARM call of a plan. `rules`: the rules whose findings it repairs; `values`: those
    findings' values (which connection, which entry), in the findings' order."""

    kind: str
    method: Method
    target: str
    body: dict[str, Any] | None
    rules: tuple[str, ...]
    values: tuple[str | None, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The CLI's and the journal's form (a public interface: `guardrail evaluate --format json`)."""
        return {
            "kind": self.kind,
            "method": self.method,
            "target": self.target,
            "body": self.body,
            "rules": list(self.rules),
        }

    def journal_json(self) -> dict[str, Any]:
        return {**self.to_json(), "values": list(self.values)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Action:
        body = data.get("body")
        return cls(
            kind=str(data["kind"]),
            method=data["method"],
            target=str(data["target"]),
            body=dict(body) if isinstance(body, Mapping) else None,
            rules=tuple(str(rule) for rule in data.get("rules") or ()),
            values=tuple(data.get("values") or ()),
        )


@dataclass(frozen=True, slots=True)
class ActionType:
    """One kind of write. `widens(before, action)`: every way the action would let more in (or
    out) than the snapshot `before` does (empty: it does not widen); the reconciler refuses an
    action whose type is not registered or whose judgement is not empty. `landed(after, action)`,
    when set, says whether the action's effect is visible in the fresh snapshot; by default an
    action has landed when planning again no longer yields it."""

    kind: str
    method: Method
    summary: str
    widens: Callable[[Snapshot, Action], list[str]]
    landed: Callable[[Snapshot, Action], bool] | None = None


def properties_of(account: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A body's `properties` object ({} when it has none, or not an object)."""
    props = account.get("properties") if account else None
    return props if isinstance(props, Mapping) else {}


def holds(account: Mapping[str, Any], body: Mapping[str, Any] | None) -> bool:
    """Does the account hold every property a PATCH body sets (the intended state)?"""
    sent = body.get("properties") if body is not None else None
    props = properties_of(account)
    return isinstance(sent, Mapping) and all(props.get(key) == value for key, value in sent.items())


def _patch_widens(before: Snapshot, action: Action) -> list[str]:
    """The account PATCH's shape: this account, and a body of properties only. What the body does
    to access is judged by `engine.action_widening` (the registry's widening model over the merged
    account) and by the independent model of `guardrail.neverwiden`."""
    if action.target.lower().rstrip("/") != before.resource_id.lower():
        return [f"{action.target} is not the account read ({before.resource_id})"]
    if action.body is None or set(action.body) != {"properties"}:
        return ["an account PATCH body other than {'properties': ...}"]
    return []


PATCH_ACCOUNT: Final = ActionType(
    "patch-account",
    "PATCH",
    "PATCH the account's properties (If-Match: the etag read)",
    _patch_widens,
)
