"""The organisation's policy file: YAML, validated strictly.

A typo in a security policy must never weaken it, so unknown keys, wrong types,
invalid CIDRs, unknown rule IDs and exemptions without `expires` are errors that name
the key or value and the file.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from guardrail import ipv4
from guardrail.resource_ids import ACCOUNT_ID_RE as ACCOUNT_ID_RE
from guardrail.resource_ids import GUID_RE as GUID_RE
from guardrail.resource_ids import SUBNET_ID_RE as SUBNET_ID_RE
from guardrail.rules import FIXABLE_RULES, REMEDIATE_DEFAULTS, RULE_IDS
from guardrail.vocabulary import Mode

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
FQDN_PATTERN_RE = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)
SCOPE_RE = re.compile(r"/subscriptions/[^/]+(/[^/]+/[^/]+)*", re.IGNORECASE)
WORKSPACE_ID_RE = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.OperationalInsights/workspaces/[^/]+",
    re.IGNORECASE,
)


class PolicyError(ValueError):
    """The policy file is unreadable or invalid; the message names the file and the key or value."""


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown_rule(rule: str) -> str:
    return f"unknown rule {rule!r}; {_did_you_mean(rule, RULE_IDS)}known rules: {', '.join(RULE_IDS)}"


def _each_matching(values: list[str], pattern: re.Pattern[str], what: str) -> list[str]:
    """`values` when every one matches `pattern` in full; else a ValueError naming the first that does not."""
    for value in values:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NetworkPolicy(_Strict):
    require_default_deny: bool = True
    require_public_network_disabled: bool = False
    min_prefix_length: int = Field(default=0, ge=0, le=32)
    allowed_ip_ranges: list[str] = Field(default_factory=list)
    allowed_vnet_subscriptions: list[str] = Field(default_factory=list)
    allowed_subnets: list[str] = Field(default_factory=list)
    bypass_allowed_kinds: list[str] = Field(default_factory=list)
    bypass_allowed_accounts: list[str] = Field(default_factory=list)
    allowed_private_endpoint_subscriptions: list[str] = Field(default_factory=list)
    require_outbound_restricted: bool = False
    allowed_fqdns: list[str] = Field(default_factory=list)
    require_approved_outbound: bool = False
    forbid_public_agent_hosting: bool = False
    require_perimeter: bool = False

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            parsed = ipv4.parse_rule(value)
            if parsed is None:
                raise ValueError(f"{value!r} is not an IPv4 address or CIDR")
            if parsed.has_prefix and ipv4.format_rule(parsed) != value:
                raise ValueError(
                    f"{value!r} has host bits set; did you mean {ipv4.format_rule(parsed)!r}? "
                    "(a typo in a range must not silently widen or narrow it)"
                )
        return values

    @field_validator("allowed_vnet_subscriptions", "allowed_private_endpoint_subscriptions")
    @classmethod
    def _subscriptions(cls, values: list[str]) -> list[str]:
        return _each_matching(values, GUID_RE, "a subscription ID (a GUID)")

    @field_validator("allowed_subnets")
    @classmethod
    def _subnets(cls, values: list[str]) -> list[str]:
        return _each_matching(values, SUBNET_ID_RE, "a subnet resource ID")

    @field_validator("bypass_allowed_accounts")
    @classmethod
    def _accounts(cls, values: list[str]) -> list[str]:
        return _each_matching(values, ACCOUNT_ID_RE, "a Microsoft.CognitiveServices/accounts resource ID")

    @field_validator("allowed_fqdns")
    @classmethod
    def _fqdns(cls, values: list[str]) -> list[str]:
        for value in values:
            if not FQDN_PATTERN_RE.fullmatch(value) or len(value) > 253:
                raise ValueError(
                    f"{value!r} is not a host name (such as api.contoso.com) or a *.suffix pattern "
                    "(such as *.contoso.com)"
                )
        return values

    @field_validator("bypass_allowed_kinds")
    @classmethod
    def _kinds(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip():
                raise ValueError("an account kind must not be empty")
        return values


class AuthPolicy(_Strict):
    require_local_auth_disabled: bool = False


class DiagnosticsPolicy(_Strict):
    workspace_id: str

    @field_validator("workspace_id")
    @classmethod
    def _workspace(cls, value: str) -> str:
        if not WORKSPACE_ID_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a Log Analytics workspace resource ID")
        return value


class Exemption(_Strict):
    scope: str
    rules: list[str]
    expires: dt.date
    reason: str = ""

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        trimmed = value.rstrip("/")
        if not SCOPE_RE.fullmatch(trimmed):
            raise ValueError(f"{value!r} is not a resource ID or scope starting with /subscriptions/<id>")
        return trimmed

    @field_validator("rules")
    @classmethod
    def _rules(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("an exemption must name at least one rule, or '*'")
        for value in values:
            if value != "*" and value not in RULE_IDS:
                raise ValueError(_unknown_rule(value))
        return values

    @field_validator("expires", mode="before")
    @classmethod
    def _expires(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            raise ValueError("expires must be a date (YYYY-MM-DD), not a timestamp")
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        return value

    def covers(self, resource_id_lower: str, rule: str, today: dt.date) -> bool:
        if today > self.expires:
            return False
        if "*" not in self.rules and rule not in self.rules:
            return False
        scope = self.scope.lower()
        return resource_id_lower == scope or resource_id_lower.startswith(scope + "/")


class Policy(_Strict):
    version: Literal[1]
    mode: Mode = "enforce"
    network: NetworkPolicy = NetworkPolicy()
    auth: AuthPolicy = AuthPolicy()
    diagnostics: DiagnosticsPolicy | None = None
    remediate: Mapping[str, bool] = Field(default_factory=dict)
    exemptions: list[Exemption] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        # Literal[1] alone lets `true` and `1.0` through, even in strict mode.
        if type(value) is not int:
            raise ValueError(f"version must be the integer 1 (got {value!r})")
        return value

    @field_validator("remediate")
    @classmethod
    def _remediate(cls, value: Mapping[str, bool]) -> Mapping[str, bool]:
        for rule, enabled in value.items():
            if rule not in RULE_IDS:
                raise ValueError(_unknown_rule(rule))
            if enabled and rule not in FIXABLE_RULES:
                raise ValueError(f"rule {rule!r} is report-only and has no fix; remove it or set it to false")
        return dict(value)

    _kinds: frozenset[str] = PrivateAttr(default=frozenset())
    _accounts: frozenset[str] = PrivateAttr(default=frozenset())
    _vnet_subs: frozenset[str] = PrivateAttr(default=frozenset())
    _subnets: frozenset[str] = PrivateAttr(default=frozenset())
    _allowed_ranges: tuple[tuple[int, int], ...] = PrivateAttr(default=())
    _pe_subs: frozenset[str] = PrivateAttr(default=frozenset())
    _fqdn_exact: frozenset[str] = PrivateAttr(default=frozenset())
    _fqdn_suffixes: tuple[str, ...] = PrivateAttr(default=())

    def model_post_init(self, context: Any, /) -> None:
        # Lower-case sets for case-insensitive comparison (as ARM compares IDs and kinds).
        network = self.network
        self._kinds = frozenset(k.lower() for k in network.bypass_allowed_kinds)
        self._accounts = frozenset(a.lower() for a in network.bypass_allowed_accounts)
        self._vnet_subs = frozenset(s.lower() for s in network.allowed_vnet_subscriptions)
        self._subnets = frozenset(s.lower() for s in network.allowed_subnets)
        parsed = (ipv4.parse_rule(r) for r in network.allowed_ip_ranges)
        self._allowed_ranges = tuple((r.first, r.last) for r in parsed if r is not None)
        self._pe_subs = frozenset(s.lower() for s in network.allowed_private_endpoint_subscriptions)
        patterns = [p.lower() for p in network.allowed_fqdns]
        self._fqdn_exact = frozenset(p for p in patterns if not p.startswith("*."))
        self._fqdn_suffixes = tuple(p[1:] for p in patterns if p.startswith("*."))  # ".contoso.com"

    # -- derived views used by the engine -------------------------------------------------
    def remediates(self, rule: str) -> bool:
        return rule in FIXABLE_RULES and self.remediate.get(rule, REMEDIATE_DEFAULTS.get(rule, False))

    def bypass_allowed(self, kind: str, resource_id: str) -> bool:
        return kind.lower() in self._kinds or resource_id.lower() in self._accounts

    @property
    def vnet_policy_active(self) -> bool:
        return bool(self.network.allowed_vnet_subscriptions or self.network.allowed_subnets)

    def subnet_allowed(self, subnet_id: str, subscription: str) -> bool:
        return subscription.lower() in self._vnet_subs or subnet_id.lower() in self._subnets

    def private_endpoint_allowed(self, subscription: str) -> bool:
        return subscription.lower() in self._pe_subs

    def fqdn_allowed(self, name: str) -> bool:
        """An exact pattern matches the name itself; `*.suffix` any name ending in `.suffix` (not
        `suffix` itself). Case-insensitive."""
        lowered = name.lower()
        return lowered in self._fqdn_exact or lowered.endswith(self._fqdn_suffixes)

    @property
    def allowed_ranges(self) -> tuple[tuple[int, int], ...]:
        return self._allowed_ranges

    def exemption_for(self, resource_id: str, rule: str, today: dt.date) -> Exemption | None:
        lowered = resource_id.lower()
        for exemption in self.exemptions:
            if exemption.covers(lowered, rule, today):
                return exemption
        return None

    @classmethod
    def default(cls) -> Policy:
        """The built-in default: require defaultAction Deny, fix what has a safe fix."""
        return cls(version=1)


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before") or item.startswith(("function-", "literal[")):
            continue
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The policy keys allowed in the mapping at `loc` (for "did you mean" on an unknown key)."""
    model: type[BaseModel] = Policy
    for item in loc:
        if isinstance(item, int):
            continue
        field = model.model_fields.get(item)
        if field is None:
            return []
        found = _model_in(field.annotation)
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        where = _location(tuple(item["loc"]))
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if item["type"] == "extra_forbidden":
            loc = tuple(item["loc"])
            key = loc[-1] if loc else ""
            hint = _did_you_mean(key, _keys_at(loc[:-1])) if isinstance(key, str) else ""
            message = f"unknown key (not part of the policy schema){'; ' + hint.rstrip() if hint else ''}"
        elif item["type"] == "missing":
            message = "required key is missing"
        shown = item.get("input")
        value = f" (got {shown!r})" if item["type"] not in ("missing", "extra_forbidden") else ""
        if isinstance(shown, dict | list):
            value = ""
        lines.append(f"{source}: {where}: {message}{value}")
    return "\n".join(lines)


def parse_policy(data: object, source: str = "<policy>") -> Policy:
    """Validate already-loaded policy data; raises PolicyError naming `source` and the key."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a YAML mapping with at least `version: 1`")
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(_describe(error, source)) from None


def parse_policy_text(text: str, source: str = "<policy>") -> Policy:
    import yaml

    class _Loader(yaml.SafeLoader):
        """SafeLoader whose timestamps that are not real dates (2027-02-30) are YAML errors
        with a position, rather than a bare ValueError from `datetime`, and which refuses
        duplicate keys (YAML forbids them; PyYAML keeps the last, silently dropping a setting)."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` then an explicit key is an override, not a duplicate
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable: the base class reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"duplicate key {key!r}",
                        key_node.start_mark,
                    )  # fmt: skip
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

        def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
            try:
                return super().construct_yaml_timestamp(node)
            except ValueError as error:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{node.value!r} is not a valid date or timestamp: {error}", node.start_mark
                ) from None

    _Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
    loader = _Loader(text)  # a SafeLoader subclass: safe
    loader.name = source  # the marks in YAML errors name the file, not "<unicode string>"
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as error:
        raise PolicyError(f"{source}: not valid YAML: {error}") from None
    finally:
        loader.dispose()
    return parse_policy(data, source)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise PolicyError(f"{path}: the policy file is not UTF-8 text (byte {error.start})") from None
    return parse_policy_text(text, str(path))


def dump_policy_defaults() -> dict[str, Any]:
    """The effective defaults, as the policy file would spell them (for docs and `policy show`)."""
    data = Policy.default().model_dump(mode="json")
    data["remediate"] = {rule: REMEDIATE_DEFAULTS[rule] for rule in FIXABLE_RULES}
    return data
