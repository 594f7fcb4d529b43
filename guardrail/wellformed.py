"""Is an account body one ARM's account schema allows? Pure: (body) -> the first problem or None.

The gateway reads accounts as raw JSON, without the SDK's models, so that a body those models
would refuse still reaches the guardrail. The guardrail judges no such body and writes nothing to
it: the service turns the problem into an `account-invalid` finding (report only) whose message
names the field. These are the shapes the SDK's `Account` model refuses, checked with the field
named (the SDK's own error does not say which field it was).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from guardrail.rules import PROPERTY_TYPES

_TIME_FIELDS = ("createdAt", "lastModifiedAt")
#: The account properties the rules read, with their types, as the rule modules declare them.
_TYPED = tuple((name, kind) for name, kind in PROPERTY_TYPES.items() if "." not in name)
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _kind(value: object) -> str:
    return "null" if value is None else f"a JSON {type(value).__name__}"


def _time_ok(value: object) -> bool:
    if not isinstance(value, str):
        return False
    text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def wrong_type(
    values: Mapping[str, Any], expected: Iterable[tuple[str, type | tuple[type, ...]]], where: str
) -> str | None:
    """The first key of `expected` whose value in `values` is set but not of its type(s), as
    "'<where><key>' has the wrong type (got ...)"; None when every one fits."""
    for key, kinds in expected:
        value = values.get(key)
        if value is not None and not isinstance(value, kinds):
            return f"'{where}{key}' has the wrong type (got {value!r})"
    return None


def problem(account: Mapping[str, Any]) -> str | None:
    """The first field of `account` that ARM's account schema does not allow, as a sentence naming
    it; None when the body is well-formed as far as the guardrail reads or writes it."""
    for key in ("id", "name", "type", "kind", "location", "etag"):
        value = account.get(key)
        if value is not None and not isinstance(value, str):
            return f"'{key}' must be a string (got {value!r})"
    for key in ("sku", "identity", "systemData", "tags"):
        value = account.get(key)
        if value is not None and not isinstance(value, Mapping):
            return f"'{key}' must be an object (got {_kind(value)}: {value!r})"
    tags = account.get("tags")
    for name, value in (tags or {}).items():
        if not isinstance(value, str):
            return f"'tags.{name}' must be a string (got {value!r})"
    sku = account.get("sku") or {}
    if sku.get("name") is not None and not isinstance(sku.get("name"), str):
        return f"'sku.name' must be a string (got {sku.get('name')!r})"
    system = account.get("systemData") or {}
    for key in _TIME_FIELDS:
        if system.get(key) is not None and not _time_ok(system.get(key)):
            return f"'systemData.{key}' is not an ISO 8601 time (got {system.get(key)!r})"
    properties = account.get("properties")
    if properties is None:
        return None
    if not isinstance(properties, Mapping):
        return f"'properties' must be an object (got {_kind(properties)})"
    wrong = wrong_type(properties, _TYPED, "properties.")
    if wrong is not None:
        return wrong
    acls = properties.get("networkAcls") or {}
    for key in ("defaultAction", "bypass"):
        value = acls.get(key)
        if value is not None and not isinstance(value, str):
            return f"'properties.networkAcls.{key}' must be a string (got {value!r})"
    for key, field in (("ipRules", "value"), ("virtualNetworkRules", "id")):
        rules = acls.get(key)
        if rules is None:
            continue
        if not isinstance(rules, list):
            return f"'properties.networkAcls.{key}' must be a list (got {_kind(rules)})"
        for index, entry in enumerate(rules):
            where = f"'properties.networkAcls.{key}[{index}]'"
            if not isinstance(entry, Mapping):
                return f"{where} must be an object with '{field}' (got {entry!r})"
            if not isinstance(entry.get(field), str):
                return f"{where}.{field} must be a string (got {entry.get(field)!r})"
    return None
