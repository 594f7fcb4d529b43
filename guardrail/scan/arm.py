"""ARM templates (hand-written, or what `bicep build` emits): the accounts a deployment would create.

Reads `parameters` (the values given, else `defaultValue`), `variables`, `resources` as an array or,
in languageVersion 2.0, as an object of symbolic names; child resources nested in `resources` or at
the top level; `condition`, `copy` (count) and `existing`; nested `Microsoft.Resources/deployments`
with an inline template, in inner or outer expression scope, with the scope they target. Every value
is evaluated by `guardrail.scan.expressions`; what cannot be known before deploy stays `Unresolved`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from guardrail.scan.expressions import Scope, Unresolved, evaluate_string, is_expression, lookup
from guardrail.scan.located import Located, Path
from guardrail.scan.model import ACCOUNT_TYPE, CHILD_TYPES, Child, Deployed, source_path

DEPLOYMENTS: Final = "microsoft.resources/deployments"
MAX_DEPTH: Final = 20  # nested deployments deeper than this are a template error


class TemplateProblem(ValueError):
    """The file is not an ARM template the scanner can read (the message says why)."""


def is_template(document: object) -> bool:
    return (
        isinstance(document, Mapping)
        and "resources" in document
        and ("$schema" in document or "contentVersion" in document)
    )


def parameter_values(document: object, label: str) -> dict[str, Any]:
    """The values of an ARM parameters file ({"parameters": {name: {"value": ...}}}); a Key Vault
    `reference` is a value not known before deploy."""
    parameters = document.get("parameters") if isinstance(document, Mapping) else None
    if not isinstance(parameters, Mapping):
        raise TemplateProblem(f'{label}: not an ARM parameters file (no "parameters" object)')
    values: dict[str, Any] = {}
    for name, entry in parameters.items():
        if isinstance(entry, Mapping) and "value" in entry:
            values[name] = entry["value"]
        elif isinstance(entry, Mapping) and "reference" in entry:
            values[name] = Unresolved(f"parameter {name!r} is a Key Vault reference")
        else:
            raise TemplateProblem(f'{label}: parameter {name!r} has no "value"')
    return values


class _Template:
    """One template (the file's, or a nested deployment's) and what its expressions can see."""

    def __init__(
        self,
        template: Mapping[str, Any],
        path: Path,
        given: Mapping[str, Any],
        subscription: str | None,
        resource_group: str | None,
        outer: _Template | None = None,
    ) -> None:
        self.template = template
        self.path = path
        self.given = given
        self.subscription = subscription
        self.resource_group = resource_group
        self.outer = outer  # outer expression scope: parameters and variables are the parent's
        self._variables: dict[str, Any] = {}
        self._busy: set[str] = set()

    def scope(self, copy_index: int | None = None) -> Scope:
        return Scope(self.parameter, self.variable, self.subscription, self.resource_group, copy_index)

    def parameter(self, name: str) -> Any:
        if self.outer is not None:
            return self.outer.parameter(name)
        try:
            return lookup(self.given, name)
        except KeyError:
            pass
        declared = self.template.get("parameters")
        try:
            spec = lookup(declared, name) if isinstance(declared, Mapping) else None
        except KeyError:
            spec = None
        if not isinstance(spec, Mapping):
            return Unresolved(f"parameter {name!r} is not declared")
        if "defaultValue" not in spec:
            if spec.get("nullable") is True:
                return None  # languageVersion 2.0: an optional parameter is null when not given
            return Unresolved(f"parameter {name!r} has no value: give it in --parameters")
        key = f"parameter:{name.lower()}"
        if key in self._busy:
            return Unresolved(f"parameter {name!r} refers to itself")
        self._busy.add(key)
        try:
            return self.resolve(spec["defaultValue"], self.scope())
        finally:
            self._busy.discard(key)

    def variable(self, name: str) -> Any:
        if self.outer is not None:
            return self.outer.variable(name)
        key = name.lower()
        if key in self._variables:
            return self._variables[key]
        declared = self.template.get("variables")
        try:
            raw = lookup(declared, name) if isinstance(declared, Mapping) else None
        except KeyError:
            return Unresolved(f"variable {name!r} is not declared")
        if key in self._busy:
            return Unresolved(f"variable {name!r} refers to itself")
        self._busy.add(key)
        try:
            value = self.resolve(raw, self.scope())
        finally:
            self._busy.discard(key)
        self._variables[key] = value
        return value

    def resolve(self, value: Any, scope: Scope) -> Any:
        """A template value with every expression in it evaluated."""
        if isinstance(value, str):
            return evaluate_string(value, scope)
        if isinstance(value, Mapping):
            resolved: dict[str, Any] = {}
            for key, item in value.items():
                name = evaluate_string(key, scope) if is_expression(key) else key
                if not isinstance(name, str):
                    return Unresolved(f"property name {key!r} is not resolved")
                resolved[name] = self.resolve(item, scope)
            return resolved
        if isinstance(value, list):
            return [self.resolve(item, scope) for item in value]
        return value


def accounts_in(
    document: Located, label: str, given: Mapping[str, Any], sub: str | None, rg: str | None
) -> list[Deployed]:
    """Every account (with its children) the template would deploy, in source order."""
    if not is_template(document.value):
        raise TemplateProblem(f"{label}: not an ARM template (no $schema and resources)")
    found: list[Deployed] = []
    children: list[tuple[str, Child, str | None, str | None]] = []  # (account name, child, sub, rg)
    _walk(_Template(document.value, (), given, sub, rg), document, label, found, children, 0)
    for account_name, child, child_sub, child_rg in children:
        for account in found:
            same_scope = (account.subscription, account.resource_group) == (child_sub, child_rg)
            if same_scope and isinstance(account.name, str) and account.name.lower() == account_name.lower():
                account.children.append(child)
                break
        else:
            # A child whose name is unresolved may belong to any account of its scope: it is kept
            # on each, where it reads as unresolved. (One whose account this deployment does not
            # create is another deployment's business.)
            if not isinstance(child.name, Unresolved):
                continue
            for account in found:
                if (account.subscription, account.resource_group) == (child_sub, child_rg):
                    account.children.append(child)
    return found


def _walk(
    template: _Template,
    document: Located,
    label: str,
    found: list[Deployed],
    children: list[tuple[str, Child, str | None, str | None]],
    depth: int,
) -> None:
    if depth > MAX_DEPTH:
        raise TemplateProblem(f"{label}: nested deployments deeper than {MAX_DEPTH}")
    resources = template.template.get("resources")
    for path, resource, full_type, name, scope in _resources(
        template, resources, (*template.path, "resources")
    ):
        line = document.line((*path, "properties"))
        where = source_path(path)
        lowered = full_type.lower()
        if lowered == ACCOUNT_TYPE.lower():
            properties = template.resolve(resource.get("properties", {}), scope)
            found.append(
                Deployed(
                    label,
                    where,
                    line,
                    ACCOUNT_TYPE,
                    name
                    if isinstance(name, (str, Unresolved))
                    else Unresolved(f"name {name!r} is not a string"),
                    template.resolve(resource.get("kind"), scope),
                    properties,
                    template.subscription,
                    template.resource_group,
                )
            )
        elif lowered in CHILD_TYPES:
            child_name = name if isinstance(name, (str, Unresolved)) else Unresolved("name is not a string")
            account_name = child_name.split("/", 1)[0] if isinstance(child_name, str) else ""
            child = Child(
                full_type, child_name, template.resolve(resource.get("properties"), scope), where, line
            )
            children.append((account_name, child, template.subscription, template.resource_group))
        elif lowered == DEPLOYMENTS:
            _nested(template, resource, path, scope, document, label, found, children, depth)


def _resources(
    template: _Template, resources: Any, path: Path, parent_type: str | None = None, parent_name: Any = None
) -> Iterator[tuple[Path, Mapping[str, Any], str, Any, Scope]]:
    """(path, resource, full type, full name, scope) of each resource deployed, children after
    their parent, each copy of a loop once."""
    if isinstance(resources, Mapping):  # languageVersion 2.0: symbolic names
        entries: list[tuple[str | int, Any]] = list(resources.items())
    elif isinstance(resources, list):
        entries = list(enumerate(resources))
    else:
        return
    for key, resource in entries:
        here = (*path, key)
        if not isinstance(resource, Mapping) or resource.get("existing") is True:
            continue
        rtype = resource.get("type")
        if not isinstance(rtype, str):
            continue
        if parent_type is not None and not rtype.split("/", 1)[0].count("."):
            rtype = f"{parent_type}/{rtype}"
        for index in _copies(template, resource):
            scope = template.scope(index)
            condition = template.resolve(resource.get("condition", True), scope)
            if condition is False:
                continue
            name = template.resolve(resource.get("name"), scope)
            if parent_name is not None and isinstance(name, str) and "/" not in name:
                name = f"{parent_name}/{name}" if isinstance(parent_name, str) else parent_name
            yield here, resource, rtype, name, scope
            nested = resource.get("resources")
            if nested is not None:
                yield from _resources(template, nested, (*here, "resources"), rtype, name)


def _copies(template: _Template, resource: Mapping[str, Any]) -> list[int | None]:
    loop = resource.get("copy")
    if not isinstance(loop, Mapping):
        return [None]
    count = template.resolve(loop.get("count"), template.scope())
    if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= 800:
        return list(range(count))
    return [None]  # unknown count: judged once, with copyIndex() unresolved


def _nested(
    parent: _Template,
    resource: Mapping[str, Any],
    path: Path,
    scope: Scope,
    document: Located,
    label: str,
    found: list[Deployed],
    children: list[tuple[str, Child, str | None, str | None]],
    depth: int,
) -> None:
    props = resource.get("properties")
    if not isinstance(props, Mapping):
        return
    sub, rg = parent.subscription, parent.resource_group
    if "subscriptionId" in resource:
        value = parent.resolve(resource["subscriptionId"], scope)
        sub = value if isinstance(value, str) else None
        rg = None  # a deployment to another subscription names its group, or is at subscription scope
    if "resourceGroup" in resource:
        value = parent.resolve(resource["resourceGroup"], scope)
        rg = value if isinstance(value, str) else None
    inline = props.get("template")
    if not isinstance(inline, Mapping):
        if "templateLink" in props:
            name = parent.resolve(resource.get("name"), scope)
            found.append(
                Deployed(
                    label,
                    source_path(path),
                    document.line(path),
                    "Microsoft.Resources/deployments",
                    name if isinstance(name, (str, Unresolved)) else Unresolved("name is not a string"),
                    subscription=sub,
                    resource_group=rg,
                    problem="a linked template (templateLink) is not followed: the accounts it may "
                    "deploy are not judged; scan that template itself",
                )
            )
        return
    options = props.get("expressionEvaluationOptions")
    inner = isinstance(options, Mapping) and str(options.get("scope", "")).lower() == "inner"
    template_path = (*path, "properties", "template")
    if inner:
        given: dict[str, Any] = {}
        passed = props.get("parameters")
        for name, entry in passed.items() if isinstance(passed, Mapping) else []:
            if isinstance(entry, Mapping) and "value" in entry:
                given[name] = parent.resolve(entry["value"], scope)
            elif isinstance(entry, Mapping) and "reference" in entry:
                given[name] = Unresolved(f"parameter {name!r} is a Key Vault reference")
        child = _Template(inline, template_path, given, sub, rg)
    else:
        child = _Template(inline, template_path, {}, sub, rg, outer=parent)
    _walk(child, document, label, found, children, depth + 1)
