"""Reading the parsed Bicep (pycep-parser) in the infra tests: resources, variables, and a small
evaluator for the expressions the templates use to build lists (concat, `cond ? a : b`)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


@cache
def parse(relative: str) -> dict[str, Any]:
    return BicepParser().parse(file_path=INFRA / relative)  # type: ignore[no-any-return]


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource's own properties, unwrapping `if (...)` conditions and `[for ...]` loops."""
    config = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config  # type: ignore[no-any-return]


def condition(resource: dict[str, Any]) -> Any:
    return resource["config"].get("condition")


def resolve(doc: dict[str, Any], value: Any) -> Any:
    """Follow a bare reference to a variable (pycep keeps `foo` as the string "foo")."""
    seen = set()
    while isinstance(value, str) and value in doc.get("variables", {}) and value not in seen:
        seen.add(value)
        value = doc["variables"][value]["value"]
    return value


def resources_of_type(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in doc.get("resources", {}).items() if r["type"].lower() == rtype.lower()}


def evaluate_list(doc: dict[str, Any], value: Any, params: dict[str, bool]) -> list[Any]:
    """A list-valued expression with the given boolean parameters: literal lists, variable references,
    concat(...) and `param ? a : b` (the shapes the role definitions use)."""
    value = resolve(doc, value)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            item = resolve(doc, item)
            out.append(item)
        return out
    if isinstance(value, dict) and "function" in value:
        assert value["function"]["type"] == "concat", value
        out = []
        for arg in value["function"]["parameters"].values():
            out.extend(evaluate_list(doc, arg, params))
        return out
    if isinstance(value, dict) and "operator" in value:
        assert value["operator"]["type"] == "conditional", value
        operands = value["operator"]["operands"]
        flag = operands["condition"]
        assert flag in params, f"condition {flag!r} is not one of the given parameters {sorted(params)}"
        return evaluate_list(doc, operands["true_value" if params[flag] else "false_value"], params)
    raise AssertionError(f"not a list expression: {value!r}")


def code(path: Path) -> str:
    """A template without its // comments (which may name what is forbidden)."""
    return re.sub(r"//[^\n]*", "", path.read_text())


def interpolated_names(value: Any) -> str:
    """The text of a (possibly interpolated) name as pycep renders it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "interpolation" in value:
        return str(value["interpolation"])
    return repr(value)
