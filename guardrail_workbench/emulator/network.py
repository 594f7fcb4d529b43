"""Microsoft.Network virtual networks and subnets, as much as the seed document's steps need.

`az network vnet subnet update --service-endpoints Microsoft.CognitiveServices` GETs the subnet and
PUTs it back; `az network vnet subnet show` GETs it; ARM refuses a Cognitive Services virtual
network rule whose subnet lacks the `Microsoft.CognitiveServices` service endpoint unless the rule
says `ignoreMissingVnetServiceEndpoint: true`. Virtual networks live in their own store beside
the accounts; subnets are kept inside their network's `properties.subnets`, as ARM returns them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from .acls import AclError, has_service_endpoint, subnet_parts

VNET_TYPE = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
COGNITIVE = "Microsoft.CognitiveServices"


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def vnet_id(subscription: str, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Network/virtualNetworks/{name}"
    )


def _not_found(kind: str, name: str) -> AclError:
    return AclError(404, "NotFound", f"Resource {kind} '{name}' was not found.")


class NetworkStore:
    """Virtual networks keyed by lower-cased ID (callers hold the emulator's lock)."""

    def __init__(self) -> None:
        self.vnets: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ bodies

    def _subnet_body(self, vnet: Mapping[str, Any], body: Mapping[str, Any], name: str) -> dict[str, Any]:
        properties = copy.deepcopy(dict(body.get("properties") or {}))
        location = str(vnet.get("location", "westus"))
        endpoints = []
        for endpoint in properties.get("serviceEndpoints") or []:
            if not isinstance(endpoint, Mapping) or not endpoint.get("service"):
                raise AclError(
                    400, "InvalidServiceEndpoint", f"A service endpoint of subnet '{name}' has no service."
                )
            endpoints.append(
                {
                    "service": endpoint["service"],
                    "locations": list(endpoint.get("locations") or [location]),
                    "provisioningState": "Succeeded",
                }
            )
        properties["serviceEndpoints"] = endpoints
        properties["provisioningState"] = "Succeeded"
        properties.setdefault("privateEndpointNetworkPolicies", "Disabled")
        properties.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
        return {
            "id": f"{vnet['id']}/subnets/{name}",
            "name": name,
            "etag": _etag(),
            "type": SUBNET_TYPE,
            "properties": properties,
        }

    def put_vnet(self, resource_id: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace a virtual network (its subnets from `properties.subnets`)."""
        key = resource_id.lower()
        existing = self.vnets.get(key)
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        properties = copy.deepcopy(dict(body.get("properties") or {}))
        vnet: dict[str, Any] = {
            "id": existing["id"] if existing else resource_id,
            "name": existing["name"] if existing else name,
            "type": VNET_TYPE,
            "location": body.get("location") or (existing or {}).get("location") or "westus",
            "etag": _etag(),
            "tags": copy.deepcopy(dict(body.get("tags") or {})),
        }
        subnets = properties.pop("subnets", None) or []
        properties.setdefault("addressSpace", {"addressPrefixes": ["10.0.0.0/16"]})
        properties["provisioningState"] = "Succeeded"
        properties.setdefault(
            "resourceGuid", (existing or {}).get("properties", {}).get("resourceGuid") or str(uuid.uuid4())
        )
        vnet["properties"] = properties
        vnet["properties"]["subnets"] = [
            self._subnet_body(vnet, subnet, str(subnet.get("name")))
            for subnet in subnets
            if isinstance(subnet, Mapping) and subnet.get("name")
        ]
        self.vnets[key] = vnet
        return copy.deepcopy(vnet), existing is None

    def get_vnet(self, resource_id: str) -> dict[str, Any]:
        vnet = self.vnets.get(resource_id.lower())
        if vnet is None:
            raise _not_found(VNET_TYPE, resource_id.rsplit("/", 1)[-1])
        return copy.deepcopy(vnet)

    def list_vnets(self, prefix: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(v) for k, v in sorted(self.vnets.items()) if k.startswith(prefix.lower())]

    def delete_vnet(self, resource_id: str) -> bool:
        return self.vnets.pop(resource_id.lower(), None) is not None

    def _find_subnet(self, vnet: Mapping[str, Any], name: str) -> int | None:
        for index, subnet in enumerate(vnet["properties"]["subnets"]):
            if str(subnet["name"]).lower() == name.lower():
                return index
        return None

    def get_subnet(self, vnet_rid: str, name: str) -> dict[str, Any]:
        vnet = self.vnets.get(vnet_rid.lower())
        if vnet is None:
            raise _not_found(VNET_TYPE, vnet_rid.rsplit("/", 1)[-1])
        index = self._find_subnet(vnet, name)
        if index is None:
            raise _not_found(SUBNET_TYPE, name)
        return copy.deepcopy(vnet["properties"]["subnets"][index])

    def list_subnets(self, vnet_rid: str) -> list[dict[str, Any]]:
        return list(self.get_vnet(vnet_rid)["properties"]["subnets"])

    def put_subnet(self, vnet_rid: str, name: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        vnet = self.vnets.get(vnet_rid.lower())
        if vnet is None:
            raise _not_found(VNET_TYPE, vnet_rid.rsplit("/", 1)[-1])
        subnet = self._subnet_body(vnet, body, name)
        index = self._find_subnet(vnet, name)
        if index is None:
            vnet["properties"]["subnets"].append(subnet)
        else:
            subnet["name"] = vnet["properties"]["subnets"][index]["name"]
            subnet["id"] = f"{vnet['id']}/subnets/{subnet['name']}"
            vnet["properties"]["subnets"][index] = subnet
        vnet["etag"] = _etag()
        return copy.deepcopy(subnet), index is None

    def subnet_by_id(self, subnet_id: str) -> dict[str, Any] | None:
        parts = subnet_parts(subnet_id)
        if parts is None:
            return None
        sub, rg, vnet_name, subnet_name = parts
        vnet = self.vnets.get(vnet_id(sub, rg, vnet_name).lower())
        if vnet is None:
            return None
        index = self._find_subnet(vnet, subnet_name)
        return None if index is None else vnet["properties"]["subnets"][index]

    # ------------------------------------------------------------------ ARM's check on accounts

    def check_vnet_rule(self, rule: Mapping[str, Any]) -> None:
        """Refuse a virtual network rule whose (known) subnet lacks the Cognitive Services endpoint.

        A subnet the emulator does not hold (another tenant's, or a test's made-up ID) is not
        checked: ARM cannot look into another tenant either.
        """
        subnet_id = str(rule.get("id", ""))
        subnet = self.subnet_by_id(subnet_id)
        if subnet is None or rule.get("ignoreMissingVnetServiceEndpoint") is True:
            return
        if has_service_endpoint(subnet, COGNITIVE):
            return
        vnet = subnet_id.rsplit("/subnets/", 1)[0]
        raise AclError(
            400,
            "NetworkAclsValidationFailure",
            f"Validation of network acls failure: SubnetsHaveNoServiceEndpointsConfigured:Subnets "
            f"{subnet['name']} of virtual network {vnet} do not have ServiceEndpoints for {COGNITIVE} "
            f"resources configured. Add {COGNITIVE} to subnet's ServiceEndpoints collection before trying "
            f"to ACL {COGNITIVE} resources to these subnets.",
        )

    # ------------------------------------------------------------------ seed / dump

    def seed(self, vnets: list[Mapping[str, Any]]) -> None:
        for vnet in vnets:
            self.put_vnet(str(vnet["id"]), vnet)

    def dump(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(v) for _, v in sorted(self.vnets.items())]
