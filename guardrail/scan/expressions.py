"""ARM template expressions (`"[concat(parameters('a'), 'b')]"`): a parser and an evaluator for the
functions templates commonly use for an account's name and network fields. Anything it cannot
resolve before deploy (`reference()`, `uniqueString()`, a parameter without a value, a function it
does not know) evaluates to an `Unresolved` value naming why; functions given one propagate it. It
never guesses. Function names and object keys are case-insensitive, as in ARM."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A value the scanner cannot know before deploy; `reason` says why."""

    reason: str


class ExpressionError(ValueError):
    """The expression is not well-formed (the template itself is wrong)."""


# -- parsing ---------------------------------------------------------------------------------------

_TOKEN: Final = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?)"
    r"|(?P<punct>[(),.\[\]]))"
)


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower-cased: ARM's function names are case-insensitive
    args: tuple[Node, ...]
    shown: str = ""  # as written


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Member:
    target: Node
    key: Node


Node = Call | Literal | Member


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    offset = 0
    while offset < len(text):
        if not text[offset:].strip():
            break
        match = _TOKEN.match(text, offset)
        if match is None or match.end() == offset:
            raise ExpressionError(f"unexpected {text[offset:].strip()[:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        offset = match.end()
    return tokens


def parse(text: str) -> Node:
    """The expression inside `[...]` as a tree."""
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take(expected: str | None = None) -> tuple[str, str]:
        nonlocal position
        token = peek()
        if token is None or (expected is not None and token[1] != expected):
            raise ExpressionError(f"expected {expected or 'more'} in {text!r}")
        position += 1
        return token

    def expression() -> Node:
        kind, value = take()
        node: Node
        if kind == "string":
            node = Literal(value[1:-1].replace("''", "'"))
        elif kind == "number":
            node = Literal(float(value) if "." in value else int(value))
        elif kind == "name":
            # A dotted name is a user-defined function (namespace.name) when a "(" follows.
            if "." in value and (peek() or ("", ""))[1] != "(":
                head, tail = value.split(".", 1)
                raise ExpressionError(f"{head!r} is not a function call in {text!r} (near .{tail})")
            take("(")
            args: list[Node] = []
            if (peek() or ("", ""))[1] != ")":
                args.append(expression())
                while (peek() or ("", ""))[1] == ",":
                    take(",")
                    args.append(expression())
            take(")")
            node = Call(value.lower(), tuple(args), value)
        else:
            raise ExpressionError(f"unexpected {value!r} in {text!r}")
        while (token := peek()) is not None and token[1] in (".", "["):
            take()
            if token[1] == ".":
                kind, name = take()
                if kind != "name":
                    raise ExpressionError(f"expected a property name after '.' in {text!r}")
                for part in name.split("."):
                    node = Member(node, Literal(part))
            else:
                node = Member(node, expression())
                take("]")
        return node

    node = expression()
    if position != len(tokens):
        raise ExpressionError(f"unexpected {tokens[position][1]!r} in {text!r}")
    return node


def is_expression(value: object) -> bool:
    """Whether a template string is an expression: `[...]`, not an escaped `[[...]`."""
    if not isinstance(value, str):
        return False
    return value.startswith("[") and value.endswith("]") and not value.startswith("[[")


# -- evaluation ------------------------------------------------------------------------------------


class Scope:
    """What an expression can see: the template's parameters and variables (looked up through
    callbacks, so they are evaluated lazily), the deployment's subscription and resource group
    (None: not known before deploy) and the copy loop's index."""

    def __init__(
        self,
        parameter: Callable[[str], Any],
        variable: Callable[[str], Any],
        subscription: str | None,
        resource_group: str | None,
        copy_index: int | None = None,
    ) -> None:
        self.parameter = parameter
        self.variable = variable
        self.subscription = subscription
        self.resource_group = resource_group
        self.copy_index = copy_index


def lookup(mapping: Mapping[str, Any], key: str) -> Any:
    """`mapping[key]`, case-insensitively as ARM reads object keys; KeyError when absent."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if name.lower() == lowered:
            return value
    raise KeyError(key)


def evaluate_string(text: str, scope: Scope) -> Any:
    """A template string value: an expression when it is `[...]`, `[[...` for a literal `[`."""
    if text.startswith("[[") and text.endswith("]"):
        return text[1:]  # an escaped literal that would read as an expression
    if not is_expression(text):
        return text
    try:
        node = parse(text[1:-1])
    except ExpressionError as error:
        return Unresolved(f"not a valid expression: {error}")
    return evaluate(node, scope)


def evaluate(node: Node, scope: Scope) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Member):
        target = evaluate(node.target, scope)
        key = evaluate(node.key, scope)
        if isinstance(target, Unresolved):
            return target
        if isinstance(key, Unresolved):
            return key
        if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
            if -len(target) <= key < len(target):
                return target[key]
            return Unresolved(f"index {key} out of range")
        if isinstance(target, Mapping) and isinstance(key, str):
            try:
                return lookup(target, key)
            except KeyError:
                return Unresolved(f"the object has no property {key!r}")
        return Unresolved(f"cannot index {type(target).__name__} with {key!r}")
    function = _FUNCTIONS.get(node.name)
    if function is None:
        return Unresolved(f"{node.shown or node.name}() is not resolved before deploy")
    if node.name == "if":  # lazy: only the branch taken is evaluated
        if len(node.args) != 3:
            return Unresolved("if() takes three arguments")
        condition = evaluate(node.args[0], scope)
        if isinstance(condition, Unresolved):
            return condition
        if not isinstance(condition, bool):
            return Unresolved(f"if() condition {condition!r} is not a boolean")
        return evaluate(node.args[1] if condition else node.args[2], scope)
    args = [evaluate(arg, scope) for arg in node.args]
    if node.name not in _TAKES_UNRESOLVED:
        for arg in args:
            if isinstance(arg, Unresolved):
                return arg
    try:
        return function(scope, *args)
    except (TypeError, ValueError, IndexError, KeyError) as error:
        return Unresolved(f"{node.name}(): {error}")


def _has_unresolved(value: Any) -> bool:
    if isinstance(value, Unresolved):
        return True
    if isinstance(value, Mapping):
        return any(_has_unresolved(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unresolved(v) for v in value)
    return False


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # ARM's string() of a bool, as .NET prints it
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))


def _concat(scope: Scope, *args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [item for a in args for item in a]
    if any(isinstance(a, (list, Mapping)) for a in args):
        raise TypeError("concat() mixes arrays and strings")
    return "".join(_string(a) for a in args)


_FORMAT_ITEM: Final = re.compile(r"\{\{|\}\}|\{(\d+)(?:,[-\d]+)?(?::[^}]*)?\}")


def _format(scope: Scope, template: Any, *args: Any) -> str:
    if not isinstance(template, str):
        raise TypeError("format() needs a string")

    def item(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        index = int(match.group(1))
        if match.group(0).find(":") >= 0:
            raise ValueError(f"format specifier in {match.group(0)!r} is not resolved")
        return _string(args[index])

    return _FORMAT_ITEM.sub(item, template)


def _parameters(scope: Scope, name: Any) -> Any:
    if not isinstance(name, str):
        raise TypeError("parameters() needs a name")
    return scope.parameter(name)


def _variables(scope: Scope, name: Any) -> Any:
    if not isinstance(name, str):
        raise TypeError("variables() needs a name")
    return scope.variable(name)


def _subscription(scope: Scope) -> dict[str, Any]:
    sub = scope.subscription
    unknown = Unresolved("the subscription is not known: give --subscription")
    return {
        "id": f"/subscriptions/{sub}" if sub else unknown,
        "subscriptionId": sub or unknown,
        "tenantId": Unresolved("subscription().tenantId is not known before deploy"),
        "displayName": Unresolved("subscription().displayName is not known before deploy"),
    }


def _resource_group(scope: Scope) -> dict[str, Any]:
    sub, group = scope.subscription, scope.resource_group
    unknown_sub = Unresolved("the subscription is not known: give --subscription")
    unknown_group = Unresolved("the resource group is not known: give --resource-group")
    group_id: Any = f"/subscriptions/{sub}/resourceGroups/{group}"
    if not (sub and group):
        group_id = unknown_group if sub else unknown_sub
    return {
        "id": group_id,
        "name": group or unknown_group,
        "type": "Microsoft.Resources/resourceGroups",
        "location": Unresolved("resourceGroup().location is not known before deploy"),
    }


_GUIDISH: Final = re.compile(r"[0-9a-fA-F-]{36}")


def _resource_id(scope: Scope, *args: Any) -> Any:
    """resourceId([subscriptionId], [resourceGroupName], type, name1, name2, ...)."""
    parts = [a for a in args]
    if not all(isinstance(a, str) for a in parts):
        raise TypeError("resourceId() takes strings")
    type_index = next((i for i, a in enumerate(parts) if "/" in a), None)
    if type_index is None or type_index > 2:
        raise ValueError("resourceId() names no resource type")
    leading, resource_type, names = parts[:type_index], parts[type_index], parts[type_index + 1 :]
    segments = resource_type.split("/")
    if len(names) != len(segments) - 1:
        raise ValueError(f"resourceId(): {resource_type} needs {len(segments) - 1} name(s)")
    sub: Any = scope.subscription
    group: Any = scope.resource_group
    if len(leading) == 2:
        sub, group = leading
    elif len(leading) == 1:
        group = leading[0]
    if not sub:
        return Unresolved("resourceId(): the subscription is not known: give --subscription")
    if not group:
        return Unresolved("resourceId(): the resource group is not known: give --resource-group")
    tail = "/".join(f"{t}/{n}" for t, n in zip(segments[1:], names, strict=True))
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{segments[0]}/{tail}"


def _subscription_resource_id(scope: Scope, *args: Any) -> Any:
    parts = list(args)
    if not all(isinstance(a, str) for a in parts):
        raise TypeError("subscriptionResourceId() takes strings")
    sub: Any = scope.subscription
    if parts and "/" not in parts[0]:
        sub, parts = parts[0], parts[1:]
    if not parts:
        raise ValueError("subscriptionResourceId() names no resource type")
    segments = parts[0].split("/")
    names = parts[1:]
    if len(names) != len(segments) - 1:
        raise ValueError(f"subscriptionResourceId(): {parts[0]} needs {len(segments) - 1} name(s)")
    if not sub:
        return Unresolved("subscriptionResourceId(): the subscription is not known: give --subscription")
    tail = "/".join(f"{t}/{n}" for t, n in zip(segments[1:], names, strict=True))
    return f"/subscriptions/{sub}/providers/{segments[0]}/{tail}"


def _merge(left: Any, right: Any) -> Any:
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        merged = dict(left)
        for key, value in right.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    return right


def _union(scope: Scope, *args: Any) -> Any:
    if args and all(isinstance(a, Mapping) for a in args):
        result: Any = {}
        for a in args:
            result = _merge(result, a)
        return result
    if args and all(isinstance(a, list) for a in args):
        out: list[Any] = []
        for a in args:
            for item in a:
                if item not in out:
                    out.append(item)
        return out
    raise TypeError("union() takes objects or arrays, all of one kind")


def _create_object(scope: Scope, *args: Any) -> dict[str, Any]:
    if len(args) % 2:
        raise ValueError("createObject() takes key, value pairs")
    result: dict[str, Any] = {}
    for key, value in zip(args[::2], args[1::2], strict=True):
        if not isinstance(key, str):
            raise TypeError("createObject() keys are strings")
        result[key] = value
    return result


def _empty(scope: Scope, value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, list, Mapping)):
        return len(value) == 0
    raise TypeError("empty() takes a string, array or object")


def _equals(scope: Scope, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a == b  # equals() is case-sensitive on strings
    return bool(a == b and type(a) is type(b))


def _bool(scope: Scope, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int):
        return value != 0
    raise ValueError(f"bool() of {value!r}")


def _int(scope: Scope, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("int() of a boolean")
    return int(value)


def _contains(scope: Scope, container: Any, item: Any) -> bool:
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    if isinstance(container, Mapping) and isinstance(item, str):
        return any(key.lower() == item.lower() for key in container)
    if isinstance(container, list):
        return item in container
    raise TypeError("contains() of a non-container")


def _copy_index(scope: Scope, *args: Any) -> int:
    if scope.copy_index is None:
        raise ValueError("copyIndex() outside a copy loop")
    offset = next((a for a in args if isinstance(a, int) and not isinstance(a, bool)), 0)
    if any(isinstance(a, str) for a in args):
        raise ValueError("copyIndex() of a named property loop is not resolved")
    return scope.copy_index + offset


def _json(scope: Scope, text: Any) -> Any:
    if not isinstance(text, str):
        raise TypeError("json() takes a string")
    return json.loads(text)


def _coalesce(scope: Scope, *args: Any) -> Any:
    for arg in args:
        if isinstance(arg, Unresolved):
            return arg  # it might be the first non-null value: never skip it
        if arg is not None:
            return arg
    return None


def _both(kind: type | tuple[type, ...]) -> Callable[[Any, Any], None]:
    def check(a: Any, b: Any) -> None:
        if not (isinstance(a, kind) and isinstance(b, kind)) or isinstance(a, bool) or isinstance(b, bool):
            raise TypeError("comparison of unlike values")

    return check


_numbers = _both((int, float))

_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "parameters": _parameters,
    "variables": _variables,
    "concat": _concat,
    "format": _format,
    "resourceid": _resource_id,
    "subscriptionresourceid": _subscription_resource_id,
    "subscription": _subscription,
    "resourcegroup": _resource_group,
    "union": _union,
    "createarray": lambda scope, *args: list(args),
    "createobject": _create_object,
    "if": lambda scope, *args: None,  # evaluated lazily in `evaluate`
    "tolower": lambda scope, s: _text(s).lower(),
    "toupper": lambda scope, s: _text(s).upper(),
    "string": lambda scope, v: _string(v),
    "bool": _bool,
    "int": _int,
    "empty": _empty,
    "equals": _equals,
    "not": lambda scope, v: (not v) if isinstance(v, bool) else _raise(TypeError("not() of a non-boolean")),
    "and": lambda scope, *v: all(_boolean(x) for x in v),
    "or": lambda scope, *v: any(_boolean(x) for x in v),
    "true": lambda scope: True,
    "false": lambda scope: False,
    "null": lambda scope: None,
    "contains": _contains,
    "length": lambda scope, v: len(v) if isinstance(v, (str, list, Mapping)) else _raise(TypeError("length")),
    "json": _json,
    "coalesce": _coalesce,
    "first": lambda scope, v: v[0] if isinstance(v, (str, list)) else _raise(TypeError("first()")),
    "last": lambda scope, v: v[-1] if isinstance(v, (str, list)) else _raise(TypeError("last()")),
    "replace": lambda scope, s, old, new: s.replace(old, new),
    "trim": lambda scope, s: s.strip(),
    "split": lambda scope, s, sep: s.split(sep) if isinstance(sep, str) else _split_any(s, sep),
    "copyindex": _copy_index,
    "greater": lambda scope, a, b: (_numbers(a, b), a > b)[1],
    "less": lambda scope, a, b: (_numbers(a, b), a < b)[1],
    "greaterorequals": lambda scope, a, b: (_numbers(a, b), a >= b)[1],
    "lessorequals": lambda scope, a, b: (_numbers(a, b), a <= b)[1],
}
_TAKES_UNRESOLVED: Final = frozenset({"coalesce"})


def _try_get(scope: Scope, value: Any, *keys: Any) -> Any:
    """tryGet(object, key...): the value, or null when a key or index is missing."""
    for key in keys:
        if isinstance(value, Mapping) and isinstance(key, str):
            try:
                value = lookup(value, key)
            except KeyError:
                return None
        elif isinstance(value, list) and isinstance(key, int) and not isinstance(key, bool):
            if not -len(value) <= key < len(value):
                return None
            value = value[key]
        elif value is None:
            return None
        else:
            raise TypeError("tryGet() of a non-object")
    return value


def _substring(scope: Scope, value: Any, start: Any = 0, length: Any = None) -> str:
    text = _text(value)
    if not isinstance(start, int) or (length is not None and not isinstance(length, int)):
        raise TypeError("substring() takes whole numbers")
    if start < 0 or start > len(text) or (length is not None and (length < 0 or start + length > len(text))):
        raise ValueError("substring() out of range")
    return text[start:] if length is None else text[start : start + length]


_FUNCTIONS["tryget"] = _try_get
_FUNCTIONS["substring"] = _substring
_FUNCTIONS["range"] = lambda scope, start, count: list(range(start, start + count))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string is needed")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("and()/or() of a non-boolean")
    return value


def _split_any(text: Any, separators: Any) -> list[str]:
    if not isinstance(text, str) or not isinstance(separators, list):
        raise TypeError("split()")
    pattern = "|".join(re.escape(s) for s in separators if isinstance(s, str))
    return re.split(pattern, text) if pattern else [text]


def _raise(error: Exception) -> Any:
    raise error


__all__ = ["ExpressionError", "Scope", "Unresolved", "evaluate_string", "is_expression", "lookup", "parse"]
