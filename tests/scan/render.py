"""Rendering account bodies as the sources `guardrail scan` reads: an ARM template whose values come
through parameters, variables and template functions (sometimes inside a nested deployment, in
inner or outer expression scope, or in a languageVersion 2.0 template with symbolic names), and a
Terraform plan (`terraform show -json`) with azurerm_cognitive_account or azapi_resource. Each
renderer also returns the body the source expresses (what a template or plan can say: e.g. a plan
always sends publicNetworkAccess), for `evaluate` to judge."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

from guardrail.resource_ids import parse_account_id

ACCOUNT_TYPE = "Microsoft.CognitiveServices/accounts"
PEC_TYPE = "Microsoft.CognitiveServices/accounts/privateEndpointConnections"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


# -- ARM ---------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Encoder:
    """Writes values into a template, each as a literal or through an expression drawn at random;
    the parameters and variables it needs are collected as it goes."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.parameters: dict[str, Any] = {}
        self.variables: dict[str, Any] = {}

    def _choice(self, n: int) -> int:
        return int(self.draw(st.integers(0, n - 1)))

    def value(self, value: Any) -> Any:
        """The template JSON for `value`: a literal or a "[...]" expression."""
        if isinstance(value, float) and not math.isfinite(value):
            return value  # only a JSON literal can say it
        way = self._choice(4)
        if way == 0:
            return self.literal(value)
        if way == 1:
            return f"[{self.expression(value)}]"
        if way == 2:
            name = f"p{len(self.parameters)}"
            self.parameters[name] = {"type": _arm_type(value), "defaultValue": _plain(value)}
            return f"[parameters({_quoted(name)})]"
        inner = self.value(value)  # first: it may declare variables of its own
        name = f"v{len(self.variables)}"
        self.variables[name] = inner
        return f"[variables({_quoted(name)})]"

    def literal(self, value: Any) -> Any:
        if isinstance(value, str):
            return "[" + value if value.startswith("[") and value.endswith("]") else value
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def expression(self, value: Any) -> str:
        """An expression (without brackets) that evaluates to `value`."""
        if isinstance(value, bool):
            return (
                ["true()", "false()"][not value]
                if self._choice(2)
                else f"bool({_quoted(str(value).lower())})"
            )
        if value is None:
            return "null()"
        if isinstance(value, int):
            return str(value) if value >= 0 or self._choice(2) else f"int({_quoted(str(value))})"
        if isinstance(value, float):
            return f"json({_quoted(json.dumps(value))})"
        if isinstance(value, str):
            way = self._choice(5)
            if way == 0 and len(value) >= 2:
                cut = len(value) // 2
                return f"concat({_quoted(value[:cut])}, {_quoted(value[cut:])})"
            if way == 1 and "{" not in value and "}" not in value:
                return f"format('{{0}}', {_quoted(value)})"
            if way == 2:
                return f"if(equals(1, 1), {_quoted(value)}, 'never')"
            if way == 3:
                name = f"p{len(self.parameters)}"
                self.parameters[name] = {"type": "string", "defaultValue": _plain(value)}
                return f"parameters({_quoted(name)})"
            return _quoted(value)
        if isinstance(value, list):
            return "createArray(" + ", ".join(self.expression(item) for item in value) + ")"
        if isinstance(value, dict):
            pairs = [f"{_quoted(k)}, {self.expression(v)}" for k, v in value.items()]
            if len(pairs) >= 2 and self._choice(2):
                cut = len(pairs) // 2
                return (
                    f"union(createObject({', '.join(pairs[:cut])}), createObject({', '.join(pairs[cut:])}))"
                )
            return "createObject(" + ", ".join(pairs) + ")"
        raise TypeError(type(value))


def _plain(value: Any) -> Any:
    """`value` as a template literal with no expression in it (a parameter's default)."""
    if isinstance(value, str):
        return "[" + value if value.startswith("[") and value.endswith("]") else value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _arm_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def arm_expressible(account: dict[str, Any]) -> dict[str, Any]:
    """The body a template can give for `account`: its private endpoint connections as child
    resources (ARM ignores a template's read-only properties.privateEndpointConnections)."""
    body = json.loads(json.dumps(account))
    props = body.get("properties")
    if isinstance(props, dict) and "privateEndpointConnections" in props:
        connections = props.pop("privateEndpointConnections")
        kept = []
        for index, connection in enumerate(connections if isinstance(connections, list) else []):
            if not isinstance(connection, dict):
                continue
            name = connection.get("name")
            name = (
                name
                if isinstance(name, str) and name and "/" not in name and "[" not in name
                else f"c{index}"
            )
            kept.append(
                {
                    "id": f"{body['id']}/privateEndpointConnections/{name}",
                    "name": name,
                    "type": PEC_TYPE,
                    "properties": connection.get("properties"),
                }
            )
        if kept:
            props["privateEndpointConnections"] = kept
    return body


@st.composite
def arm_templates(
    draw: st.DrawFn, account: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """(template, the body it deploys, subscription, resource group) for a generated account."""
    body = arm_expressible(account)
    sub, group, name = parse_account_id(body["id"])
    encoder = _Encoder(draw)
    props = body.get("properties", "absent")
    connections = props.pop("privateEndpointConnections", []) if isinstance(props, dict) else []
    resource: dict[str, Any] = {"type": ACCOUNT_TYPE, "apiVersion": "2025-06-01", "name": encoder.value(name)}
    if "kind" in body:
        resource["kind"] = encoder.value(body["kind"])
    resource["location"] = "[resourceGroup().location]"
    if props != "absent":
        resource["properties"] = encoder.value(props) if draw(st.booleans()) else encoder.literal(props)
    children = []
    nest_children = draw(st.booleans())
    for connection in connections:
        child_name = connection["name"]
        child: dict[str, Any] = {"type": "privateEndpointConnections" if nest_children else PEC_TYPE}
        child["apiVersion"] = "2025-06-01"
        child["name"] = (
            child_name
            if nest_children
            else f"[format('{{0}}/{{1}}', {encoder.expression(name)}, {_quoted(child_name)})]"
        )
        if connection["properties"] is not None:
            child["properties"] = encoder.literal(connection["properties"])
        children.append(child)
    if props != "absent" and isinstance(props, dict) and connections:
        props["privateEndpointConnections"] = connections
    if nest_children and children:
        resource["resources"] = children
        resources: list[dict[str, Any]] = [resource]
    else:
        resources = [resource, *children]
    shape = draw(st.sampled_from(["plain", "symbolic", "nested-inner", "nested-outer"]))
    template: dict[str, Any] = {"$schema": SCHEMA, "contentVersion": "1.0.0.0"}
    if shape == "symbolic":
        template["languageVersion"] = "2.0"
        template["resources"] = {f"r{i}": item for i, item in enumerate(resources)}
    else:
        template["resources"] = resources
    template["parameters"] = encoder.parameters
    template["variables"] = encoder.variables
    if shape == "nested-inner":
        # The inner template gets its parameters from the outer one, which passes them through one
        # parameter of its own each (as Bicep compiles a module).
        outer_parameters = {f"o{k}": dict(v) for k, v in template["parameters"].items()}
        passed = {k: {"value": f"[parameters('o{k}')]"} for k in template["parameters"]}
        for spec in template["parameters"].values():
            del spec["defaultValue"]
        template = _deployment(
            template, {"scope": "inner"}, passed, outer_parameters, draw(st.booleans()), group
        )
    elif shape == "nested-outer":
        outer_parameters, outer_variables = template.pop("parameters"), template.pop("variables")
        template = _deployment(template, None, None, outer_parameters, False, group)
        template["variables"] = outer_variables
    return template, body, sub, group


def _deployment(
    inner: dict[str, Any],
    options: dict[str, Any] | None,
    passed: dict[str, Any] | None,
    outer_parameters: dict[str, Any],
    explicit_group: bool,
    group: str,
) -> dict[str, Any]:
    properties: dict[str, Any] = {"mode": "Incremental", "template": inner}
    if options is not None:
        properties["expressionEvaluationOptions"] = options
    if passed is not None:
        properties["parameters"] = passed
    deployment: dict[str, Any] = {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": "module",
        "properties": properties,
    }
    if explicit_group:
        deployment["resourceGroup"] = group
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": outer_parameters,
        "resources": [deployment],
    }


# -- Terraform ---------------------------------------------------------------------------------


def _strings(entries: Any, key: str) -> list[str]:
    """The distinct string `key`s of a list of entries (a Terraform set of them)."""
    found = [e[key] for e in entries or [] if isinstance(e, dict) and isinstance(e.get(key), str)]
    return list(dict.fromkeys(found))


def _lower_in(value: Any, *choices: str) -> str | None:
    if isinstance(value, str):
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
    return None


@st.composite
def terraform_plans(draw: st.DrawFn, account: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(plan, the body it deploys, subscription) for a generated account."""
    sub, group, name = parse_account_id(account["id"])
    if draw(st.booleans()):
        change, body, extra = _azapi(draw, arm_expressible(account), sub, group, name)
    else:
        change, body = _azurerm(draw, account, group, name)
        extra = []
    plan = {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "resource_changes": [change, *extra],
    }
    return plan, body, sub


def _azurerm(
    draw: st.DrawFn, account: dict[str, Any], group: str, name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    raw = account.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    public = _lower_in(props.get("publicNetworkAccess"), "Disabled") is None
    local_auth = props.get("disableLocalAuth") is not True
    restricted = props.get("restrictOutboundNetworkAccess") is True
    fqdns_in = props.get("allowedFqdnList")
    fqdns = [f for f in fqdns_in if isinstance(f, str) and f] if isinstance(fqdns_in, list) else None
    subdomain = props.get("customSubDomainName")
    kind = account.get("kind") if isinstance(account.get("kind"), str) else "OpenAI"
    after: dict[str, Any] = {
        "name": name,
        "resource_group_name": group,
        "location": "eastus",
        "kind": kind,
        "sku_name": "S0",
        "public_network_access_enabled": draw(st.sampled_from([public, None])) if public else public,
        "local_auth_enabled": draw(st.sampled_from([local_auth, None])) if local_auth else local_auth,
        "outbound_network_access_restricted": restricted
        if restricted
        else draw(st.sampled_from([False, None])),
        "fqdns": fqdns if fqdns else draw(st.sampled_from([None, []])),
        "custom_subdomain_name": subdomain if isinstance(subdomain, str) and subdomain else None,
        "network_acls": [],
        "network_injection": [],
        "identity": [],
    }
    body_props: dict[str, Any] = {
        "publicNetworkAccess": "Enabled" if public else "Disabled",
        "disableLocalAuth": not local_auth,
        "restrictOutboundNetworkAccess": restricted,
        "allowedFqdnList": fqdns or [],
        "customSubDomainName": after["custom_subdomain_name"] or "",
    }
    acls = props.get("networkAcls")
    if isinstance(acls, dict):
        action = _lower_in(acls.get("defaultAction"), "Deny") or "Allow"
        bypass = _lower_in(acls.get("bypass"), "None", "AzureServices")
        ips = _strings(acls.get("ipRules"), "value")
        vnets = _strings(acls.get("virtualNetworkRules"), "id")
        block = {
            "default_action": action,
            "bypass": bypass if bypass else draw(st.sampled_from([None, ""])),
            "ip_rules": ips,
            "virtual_network_rules": [
                {"subnet_id": s, "ignore_missing_vnet_service_endpoint": False} for s in vnets
            ],
        }
        after["network_acls"] = [block]
        body_acls: dict[str, Any] = {
            "defaultAction": action,
            "ipRules": [{"value": ip} for ip in ips],
            "virtualNetworkRules": [{"id": s, "ignoreMissingVnetServiceEndpoint": False} for s in vnets],
        }
        if bypass:
            body_acls["bypass"] = bypass
        body_props["networkAcls"] = body_acls
    change = {
        "address": "azurerm_cognitive_account.this",
        "mode": "managed",
        "type": "azurerm_cognitive_account",
        "name": "this",
        "provider_name": "registry.terraform.io/hashicorp/azurerm",
        "change": {
            "actions": ["create"],
            "before": None,
            "after": after,
            "after_unknown": {
                "id": True,
                "endpoint": True,
                "network_acls": [{}] if after["network_acls"] else [],
            },
        },
    }
    body = {"id": account["id"], "name": name, "type": ACCOUNT_TYPE, "kind": kind, "properties": body_props}
    return change, body


def _azapi(
    draw: st.DrawFn, body: dict[str, Any], sub: str, group: str, name: str
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    payload: dict[str, Any] = {}
    if "kind" in body:
        payload["kind"] = body["kind"]
    props = body.get("properties")
    connections = []
    if isinstance(props, dict):
        props = dict(props)
        connections = props.pop("privateEndpointConnections", [])
    if "properties" in body:
        payload["properties"] = props
    string_body = draw(st.booleans())  # azapi 1.x: the body as a JSON string
    change = {
        "address": "azapi_resource.this",
        "mode": "managed",
        "type": "azapi_resource",
        "name": "this",
        "change": {
            "actions": ["create"],
            "before": None,
            "after": {
                "type": f"{ACCOUNT_TYPE}@2025-06-01",
                "name": name,
                "parent_id": f"/subscriptions/{sub}/resourceGroups/{group}",
                "location": "eastus",
                "body": json.dumps(payload) if string_body else payload,
            },
            "after_unknown": {"id": True, "output": True},
        },
    }
    extra = []
    for index, connection in enumerate(connections):
        child_body = {} if connection["properties"] is None else {"properties": connection["properties"]}
        extra.append(
            {
                "address": f"azapi_resource.pec{index}",
                "mode": "managed",
                "type": "azapi_resource",
                "name": f"pec{index}",
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": {
                        "type": f"{PEC_TYPE}@2025-06-01",
                        "name": connection["name"],
                        "parent_id": body["id"],
                        "body": child_body,
                    },
                    "after_unknown": {"id": True},
                },
            }
        )
    return change, body, extra
