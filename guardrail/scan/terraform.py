"""Terraform plans (`terraform show -json PLAN`): the accounts a plan would leave in place.

`azurerm_cognitive_account` is mapped to the ARM body the provider sends, as
hashicorp/terraform-provider-azurerm 5.2.0 builds it (internal/services/cognitive/
cognitive_account_resource.go, website/docs/r/cognitive_account.html.markdown):
`public_network_access_enabled` (default true) -> publicNetworkAccess Enabled|Disabled;
`local_auth_enabled` (default true) -> disableLocalAuth, negated; `outbound_network_access_restricted`
(default false) -> restrictOutboundNetworkAccess; `fqdns` -> allowedFqdnList (always sent, [] when
unset); `custom_subdomain_name` -> customSubDomainName ("" when unset); `network_acls` (absent: no
networkAcls) -> networkAcls {defaultAction, ipRules [{value}], virtualNetworkRules [{id,
ignoreMissingVnetServiceEndpoint}], bypass only when set}; `network_injection` -> networkInjections
[{scenario, subnetArmId}]. `azapi_resource` of type Microsoft.CognitiveServices/accounts@... carries
the ARM body itself in `body` (an object in azapi 2.x, a JSON string in 1.x); its children of the
collected types are folded into their account by `parent_id`. A value in `after_unknown` is known only
after apply: it is `Unresolved`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from guardrail.resource_ids import parse_account_or_child
from guardrail.scan.expressions import Unresolved
from guardrail.scan.located import Located
from guardrail.scan.model import ACCOUNT_TYPE, CHILD_TYPES, Child, Deployed, source_path

AZURERM_ACCOUNT: Final = "azurerm_cognitive_account"
AZAPI: Final = "azapi_resource"


class PlanProblem(ValueError):
    """The file is not a Terraform plan the scanner can read (the message says why)."""


def is_plan(document: object) -> bool:
    """A plan, or the state that `terraform show -json` prints without one (refused below)."""
    keys = ("resource_changes", "planned_values", "values")
    return isinstance(document, Mapping) and "format_version" in document and any(k in document for k in keys)


def _known(value: Any, unknown: Any, path: str) -> Any:
    """`value` with each part `after_unknown` marks replaced by an Unresolved naming it."""
    if unknown is True:
        return Unresolved(f"{path} is known only after apply")
    if not _marks(unknown):
        return value
    if isinstance(unknown, Mapping):
        merged = dict(value) if isinstance(value, Mapping) else {}
        for key, mark in unknown.items():
            merged[key] = _known(merged.get(key), mark, f"{path}.{key}")
        return merged
    items = list(value) if isinstance(value, list) else []
    marks = list(unknown)
    size = max(len(items), len(marks))
    items += [None] * (size - len(items))
    marks += [False] * (size - len(marks))
    return [
        _known(item, mark, f"{path}[{i}]") for i, (item, mark) in enumerate(zip(items, marks, strict=True))
    ]


def _marks(unknown: Any) -> bool:
    """Whether `after_unknown` marks anything here."""
    if unknown is True:
        return True
    if isinstance(unknown, Mapping):
        return any(_marks(mark) for mark in unknown.values())
    if isinstance(unknown, list):
        return any(_marks(mark) for mark in unknown)
    return False


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _azurerm_properties(after: Mapping[str, Any]) -> dict[str, Any]:
    public = _or(after.get("public_network_access_enabled"), True)
    local_auth = _or(after.get("local_auth_enabled"), True)
    fqdns = _or(after.get("fqdns"), [])
    props: dict[str, Any] = {
        "publicNetworkAccess": public
        if isinstance(public, Unresolved)
        else ("Enabled" if public else "Disabled"),
        "disableLocalAuth": local_auth if isinstance(local_auth, Unresolved) else not local_auth,
        "restrictOutboundNetworkAccess": _or(after.get("outbound_network_access_restricted"), False),
        "allowedFqdnList": fqdns,
        "customSubDomainName": _or(after.get("custom_subdomain_name"), ""),
    }
    acls = after.get("network_acls")
    if isinstance(acls, Unresolved):
        props["networkAcls"] = acls
    elif isinstance(acls, list) and acls:
        block = acls[0]
        props["networkAcls"] = _network_acls(block) if isinstance(block, Mapping) else block
    injection = after.get("network_injection")
    if isinstance(injection, Unresolved):
        props["networkInjections"] = injection
    elif isinstance(injection, list) and injection:
        props["networkInjections"] = [
            {"scenario": item.get("scenario"), "subnetArmId": item.get("subnet_id")}
            if isinstance(item, Mapping)
            else item
            for item in injection
        ]
    return props


def _network_acls(block: Mapping[str, Any]) -> dict[str, Any]:
    ips = _or(block.get("ip_rules"), [])
    vnets = _or(block.get("virtual_network_rules"), [])
    acls: dict[str, Any] = {
        "defaultAction": block.get("default_action"),
        "ipRules": ips if isinstance(ips, Unresolved) else [{"value": ip} for ip in ips],
        "virtualNetworkRules": vnets
        if isinstance(vnets, Unresolved)
        else [
            {
                "id": rule.get("subnet_id"),
                "ignoreMissingVnetServiceEndpoint": _or(
                    rule.get("ignore_missing_vnet_service_endpoint"), False
                ),
            }
            if isinstance(rule, Mapping)
            else rule
            for rule in vnets
        ],
    }
    bypass = block.get("bypass")
    if bypass is not None and bypass != "":  # the provider sends bypass only when it is set
        acls["bypass"] = bypass
    return acls


def _parent(parent_id: Any) -> tuple[str | None, str | None]:
    """(subscription, resource group) of an azapi parent_id naming a resource group."""
    if not isinstance(parent_id, str):
        return None, None
    parts = parent_id.strip("/").split("/")
    if len(parts) >= 4 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups":
        return parts[1], parts[3]
    return (parts[1], None) if len(parts) >= 2 and parts[0].lower() == "subscriptions" else (None, None)


def _body(after: Mapping[str, Any]) -> Any:
    body = after.get("body")
    if isinstance(body, str):  # azapi 1.x: the body as a JSON string
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return Unresolved("body is not JSON")
    return body


def accounts_in(document: Located, label: str, subscription: str | None) -> list[Deployed]:
    plan = document.value
    if not is_plan(plan):
        raise PlanProblem(f"{label}: not a Terraform plan (terraform show -json)")
    if "planned_values" not in plan and "resource_changes" not in plan:
        raise PlanProblem(
            f"{label}: a Terraform state, not a plan: give `terraform show -json PLANFILE` of a saved plan "
            "(terraform plan -out PLANFILE)"
        )
    changes = plan.get("resource_changes") or []
    if not isinstance(changes, list):
        raise PlanProblem(f"{label}: resource_changes is not a list")
    found: list[Deployed] = []
    children: list[tuple[str, Child]] = []  # (account ID, child)
    for index, change in enumerate(changes):
        if not isinstance(change, Mapping) or change.get("mode", "managed") != "managed":
            continue
        detail = change.get("change")
        if not isinstance(detail, Mapping) or not isinstance(detail.get("after"), Mapping):
            continue  # deleted, or nothing after apply
        rtype = change.get("type")
        address = str(change.get("address", source_path(("resource_changes", index))))
        path = ("resource_changes", index, "change", "after")
        after = _known(detail["after"], detail.get("after_unknown"), address)
        line = document.line(path)
        if rtype == AZURERM_ACCOUNT:
            group = after.get("resource_group_name")
            found.append(
                Deployed(
                    label,
                    address,
                    line,
                    ACCOUNT_TYPE,
                    _name(after.get("name")),
                    after.get("kind"),
                    _azurerm_properties(after),
                    subscription,
                    group if isinstance(group, str) else None,
                )
            )
        elif rtype == AZAPI:
            azure_type = after.get("type")
            if not isinstance(azure_type, str):
                continue
            base = azure_type.split("@", 1)[0]
            body = _body(after)
            properties = body.get("properties") if isinstance(body, Mapping) else body
            if base.lower() == ACCOUNT_TYPE.lower():
                sub, group = _parent(after.get("parent_id"))
                found.append(
                    Deployed(
                        label,
                        address,
                        document.line((*path, "body", "properties")),
                        ACCOUNT_TYPE,
                        _name(after.get("name")),
                        body.get("kind") if isinstance(body, Mapping) else None,
                        properties,
                        sub or subscription,
                        group,
                    )
                )
            elif base.lower() in CHILD_TYPES:
                parent_id = after.get("parent_id")
                name = _name(after.get("name"))
                parent = parent_id if isinstance(parent_id, str) else ""
                tail = parent.rstrip("/").split("/accounts/", 1)[-1] if "/accounts/" in parent else ""
                full: str | Unresolved = f"{tail}/{name}" if isinstance(name, str) and tail else name
                if isinstance(full, str) and not tail:
                    full = Unresolved(f"parent_id {parent_id!r} is not known or not an account")
                children.append((parent, Child(base, full, properties, address, line)))
    for parent, child in children:
        for deployed in found:
            if _same_account(parent, deployed):
                deployed.children.append(child)
    return found


def _same_account(parent_id: str, account: Deployed) -> bool:
    try:
        sub, group, name = parse_account_or_child(parent_id)
    except ValueError:
        return False
    return (
        isinstance(account.name, str)
        and account.name.lower() == name.lower()
        and (account.resource_group or "").lower() == group.lower()
        and (account.subscription is None or account.subscription.lower() == sub.lower())
    )


def _name(value: Any) -> str | Unresolved:
    if isinstance(value, (str, Unresolved)):
        return value
    return Unresolved(f"name {value!r} is not a string")
