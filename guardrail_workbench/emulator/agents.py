"""The agent-era children of an AI services account (issue 24), as ARM serves them:

- `accounts/{name}/managedNetworks/default` (the Foundry managed network: GET, list, PUT, PATCH):
  `properties.managedNetwork.isolationMode`, the GET embedding `outboundRules` as a map from rule
  name to rule. A write answers 202 with no body, `Azure-AsyncOperation` at
  `.../providers/Microsoft.MachineLearningServices/locations/{loc}/mfeOperationsStatus/mnet:...`
  (polled: `{"id", "status": InProgress | Succeeded | Failed}`) and `Location` at the resource, as
  the Azure CLI's recordings of real ARM show (../shared/contracts/recorded-arm/azure-cli/
  test_managed_network_crud.yaml, test_outbound_rule_fqdn.yaml). The spec has no DELETE for it
  (405 here).
- `.../managedNetworks/default/outboundRules/{rule}` (GET, list, PUT, DELETE): `{type: FQDN |
  ServiceTag | PrivateEndpoint, destination, category: Required | Recommended | UserDefined |
  Dependency (az offers it), status}`;
  writes are asynchronous like the managed network's; a DELETE of a missing rule is 204.
  `AllowOnlyApprovedOutbound` brings the Required system rule the recordings show; leaving it
  removes it. Bodies carry `properties` only, as recorded (no id, name or type).
- `accounts/{name}/capabilityHosts/{host}` (GET, list, PUT, DELETE): `customerSubnet`,
  `enablePublicHostingEnvironment`. PUT answers 201/200 with the body (terminal); DELETE answers 202
  with `Location` at the account operations' `operationResults` (then 204), or 204 when missing.
- `accounts/{name}/networkSecurityPerimeterConfigurations[/{config}]`: read-only (GET, list), from
  the tenant document.

Writes emit Microsoft.Resources events whose subject is the child's ID, when they end. Faults apply
as to every surface (by method and resource ID); `fail_provisioning` makes an asynchronous write end
`Failed` without applying it. The account's `properties.networkInjections` needs nothing here: an
account body keeps whatever properties a PUT or PATCH sends.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

# Route names and the path tails (after `.../accounts/{name}`) that arm.py's router sends here.
ROUTE_TAILS: Final[tuple[tuple[str, str], ...]] = (
    ("mnet_list", r"/managednetworks"),
    ("mnet", r"/managednetworks/(?P<mnet>[^/]+)"),
    ("rule_list", r"/managednetworks/(?P<mnet>[^/]+)/outboundrules"),
    ("rule", r"/managednetworks/(?P<mnet>[^/]+)/outboundrules/(?P<rule>[^/]+)"),
    ("caphost_list", r"/capabilityhosts"),
    ("caphost", r"/capabilityhosts/(?P<host>[^/]+)"),
    ("nsp_list", r"/networksecurityperimeterconfigurations"),
    ("nsp", r"/networksecurityperimeterconfigurations/(?P<nsp>[^/]+)"),
)
ROUTES: Final[frozenset[str]] = frozenset(name for name, _ in ROUTE_TAILS)

from . import arm as _arm  # noqa: E402  (arm imports this module; ROUTE_TAILS must exist first)

if TYPE_CHECKING:
    from . import events as ev
    from .arm import ArmApp, Request, Response, _Operation
    from .faults import Fault

ISOLATION_MODES: Final = ("AllowInternetOutbound", "AllowOnlyApprovedOutbound", "Disabled")
RULE_TYPES: Final = ("FQDN", "ServiceTag", "PrivateEndpoint")
RULE_CATEGORIES: Final = ("Required", "Recommended", "UserDefined", "Dependency")
CAPABILITY_HOST_TYPE: Final = "Microsoft.CognitiveServices/accounts/capabilityHosts"
NSP_TYPE: Final = "Microsoft.CognitiveServices/accounts/networkSecurityPerimeterConfigurations"
#: The Required rule ARM adds when the isolation mode becomes AllowOnlyApprovedOutbound (recorded).
SYSTEM_RULES: Final[Mapping[str, Mapping[str, Any]]] = {
    "__SYS_ST_AzureActiveDirectory_TCP": {
        "status": "Active",
        "category": "Required",
        "type": "ServiceTag",
        "destination": {
            "serviceTag": "AzureActiveDirectory",
            "protocol": "TCP",
            "portRanges": "80, 443",
            "action": "Allow",
            "addressPrefixes": [],
        },
    }
}
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}")  # managed network and outbound rule names (spec)
_HOST_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}")
_CANONICAL = {
    "managednetworks": "managedNetworks",
    "outboundrules": "outboundRules",
    "capabilityhosts": "capabilityHosts",
    "networksecurityperimeterconfigurations": "networkSecurityPerimeterConfigurations",
}


def _method_not_allowed(method: str, path: str) -> Exception:
    return _arm.ArmError(
        405, "MethodNotAllowed", f"The requested method '{method}' is not allowed for '{path}'."
    )


def _bad_request(message: str, code: str = "BadRequest") -> Exception:
    return _arm.ArmError(400, code, message)


def _managed_network_body(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The managed network as its GET answers (recorded): properties only."""
    network = copy.deepcopy(dict(settings))
    return {
        "properties": {
            "provisioningState": network.get("provisioningState", "Succeeded"),
            "managedNetwork": network,
        }
    }


class AgentSurfaces:
    """The children above, per account (keys: lower-cased resource IDs). Every method that reads or
    changes them holds the app's lock."""

    def __init__(self, app: ArmApp) -> None:
        self.app = app
        self.managed_networks: dict[str, dict[str, Any]] = {}  # lower account id -> managedNetwork
        self.capability_hosts: dict[str, dict[str, Any]] = {}  # lower host id -> ARM body
        self.nsp_configurations: dict[str, dict[str, Any]] = {}  # lower configuration id -> ARM body
        self._writing: set[str] = set()  # lower account ids with a managed network write under way

    @property
    def lock(self) -> threading.RLock:
        return self.app.lock

    # ---------------------------------------------------------------- seed, dump, forget

    def seed(self, data: Mapping[str, Any]) -> None:
        """`managedNetworks` (bodies as GET answers them, with the `.../managedNetworks/default`
        `id`; rules in `properties.managedNetwork.outboundRules`), `capabilityHosts` and
        `networkSecurityPerimeterConfigurations` (bodies with their full `id`s)."""
        with self.lock:
            for body in data.get("managedNetworks", []):
                rid = str(body["id"])
                account_key = rid.lower().split("/managednetworks/", 1)[0]
                settings = copy.deepcopy(dict((body.get("properties") or {}).get("managedNetwork") or {}))
                settings.setdefault("isolationMode", "AllowInternetOutbound")
                settings.setdefault("networkId", str(uuid.uuid4()))
                settings.setdefault("outboundRules", {})
                settings.setdefault("status", {"status": "Active"})
                settings.setdefault("provisioningState", "Succeeded")
                self.managed_networks[account_key] = settings
            for body in data.get("capabilityHosts", []):
                self.capability_hosts[str(body["id"]).lower()] = self._child_body(body, CAPABILITY_HOST_TYPE)
            for body in data.get("networkSecurityPerimeterConfigurations", []):
                self.nsp_configurations[str(body["id"]).lower()] = self._child_body(body, NSP_TYPE)

    @staticmethod
    def _child_body(body: Mapping[str, Any], resource_type: str) -> dict[str, Any]:
        result: dict[str, Any] = copy.deepcopy(dict(body))
        result.setdefault("name", str(body["id"]).rstrip("/").rsplit("/", 1)[-1])
        result.setdefault("type", resource_type)
        result.setdefault("properties", {})
        return result

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """The seed document's keys for these children (what `seed` reads back)."""
        with self.lock:
            networks = []
            for key, settings in sorted(self.managed_networks.items()):
                account = self.app.accounts.get(key)
                rid = f"{account['id'] if account else key}/managedNetworks/default"
                networks.append({"id": rid, **_managed_network_body(settings)})
            return {
                "managedNetworks": networks,
                "capabilityHosts": [copy.deepcopy(v) for _, v in sorted(self.capability_hosts.items())],
                "networkSecurityPerimeterConfigurations": [
                    copy.deepcopy(v) for _, v in sorted(self.nsp_configurations.items())
                ],
            }

    def forget(self, account_key: str) -> None:
        """The account is deleted: so are its children."""
        with self.lock:
            self.managed_networks.pop(account_key, None)
            self._writing.discard(account_key)
            for store in (self.capability_hosts, self.nsp_configurations):
                for key in [k for k in store if k.startswith(account_key + "/")]:
                    del store[key]

    # ---------------------------------------------------------------- requests

    def handle(
        self,
        request: Request,
        route: str,
        path: str,
        context: ev.WriteContext | None,
        fault: Fault | None,
        api_version: str,
    ) -> Response:
        parts = path.split("/")
        account_rid = "/".join(parts[:9])
        sub = parts[2]
        with self.lock:
            account = self.app.accounts.get(account_rid.lower())
            if account is None:
                self.app._subscription(sub)
                raise _arm._not_found(account_rid)
            # ARM's casing for the account and the child types; the client's for the child names
            tail = [_CANONICAL.get(p.lower(), p) if i % 2 == 0 else p for i, p in enumerate(parts[9:])]
            path = "/".join([account["id"], *tail])
        fail = fault is not None and fault.action == "fail_provisioning"
        if route.startswith("nsp"):
            return self._nsp(request, route, path, api_version, sub)
        if route.startswith("caphost"):
            return self._capability_host(request, route, path, context, api_version, sub, fail)
        if route in ("mnet_list", "mnet"):
            return self._managed_network(request, route, path, context, api_version, sub, fail)
        return self._outbound_rule(request, route, path, context, api_version, sub, fail)

    def _read(self, body: Any, sub: str) -> Response:
        return self.app._ok_read(None, body, sub)

    # ---------------------------------------------------------------- managed network

    def _managed_network(
        self,
        request: Request,
        route: str,
        path: str,
        context: ev.WriteContext | None,
        api_version: str,
        sub: str,
        fail: bool,
    ) -> Response:
        account_id = "/".join(path.split("/")[:9])
        key = account_id.lower()
        with self.lock:
            settings = self.managed_networks.get(key)
            if route == "mnet_list":
                if request.method != "GET":
                    raise _method_not_allowed(request.method, path)
                # as its GET answers it (recorded without id, name or type)
                value = [] if settings is None else [_managed_network_body(settings)]
                return self._read({"value": value}, sub)
            name = path.rsplit("/", 1)[-1]
            if request.method == "GET":
                if settings is None or name.lower() != "default":
                    raise _arm._not_found(path)
                return self._read(_managed_network_body(settings), sub)
            if request.method not in ("PUT", "PATCH"):
                raise _method_not_allowed(request.method, path)
            assert context is not None
            if name != "default":
                raise _bad_request(
                    f"The managed network name '{name}' is not supported: only 'default' is.",
                    "InvalidManagedNetworkName",
                )
            if request.method == "PATCH" and settings is None:
                raise _arm._not_found(path)
            sent = (self.app._parse_body(request).get("properties") or {}).get("managedNetwork")
            if not isinstance(sent, dict):
                raise _bad_request("properties.managedNetwork is required.", "InvalidRequestContent")
            mode = sent.get("isolationMode", None if settings is None else settings["isolationMode"])
            if mode not in ISOLATION_MODES:
                raise _bad_request(
                    f"properties.managedNetwork.isolationMode must be one of {', '.join(ISOLATION_MODES)}, "
                    f"not {mode!r}.",
                    "InvalidIsolationMode",
                )
            rules = sent.get("outboundRules")
            if rules is not None:
                if not isinstance(rules, dict):
                    raise _bad_request("properties.managedNetwork.outboundRules must be an object.")
                for rule_name, rule in rules.items():
                    self._check_rule(str(rule_name), rule)
            self._begin_write(key, account_id)
            headers = self.app._write_gate(sub)
            if not fail:
                new = self._apply_network(settings, sent, mode, request.method)
                new["provisioningState"] = "Creating" if settings is None else "Updating"
                self.managed_networks[key] = new
            network_id = (self.managed_networks.get(key) or {}).get("networkId") or str(uuid.uuid4())
            headers.update(
                self._start(
                    account_id,
                    path,
                    context,
                    api_version,
                    fail,
                    f"{network_id}-{uuid.uuid4().hex[:8]}_{uuid.uuid4()}",  # as recorded
                    network_id,
                )
            )
        return _arm.Response(202, None, headers)

    @staticmethod
    def _apply_network(
        settings: Mapping[str, Any] | None, sent: Mapping[str, Any], mode: str, method: str
    ) -> dict[str, Any]:
        old = copy.deepcopy(dict(settings or {}))
        new: dict[str, Any] = {
            "isolationMode": mode,
            "networkId": old.get("networkId") or str(uuid.uuid4()),
            "outboundRules": {} if method == "PUT" else dict(old.get("outboundRules") or {}),
            "status": {"status": "Active"},
            "firewallSku": sent.get("firewallSku", old.get("firewallSku", "Standard")),
            "enableNetworkMonitor": sent.get("enableNetworkMonitor", old.get("enableNetworkMonitor", False)),
            "enableFirewallLog": sent.get("enableFirewallLog", old.get("enableFirewallLog", False)),
            "provisionNetworkNow": True,
            "managedNetworkKind": "V2",
            "changeableIsolationModes": [],
        }
        if method == "PUT" and settings is not None:  # a replace keeps the system rules it has
            new["outboundRules"] = {
                n: r for n, r in (old.get("outboundRules") or {}).items() if r.get("category") == "Required"
            }
        for rule_name, rule in (sent.get("outboundRules") or {}).items():
            new["outboundRules"][str(rule_name)] = _rule_settings(rule, status="Active")
        rules = new["outboundRules"]
        if mode == "AllowOnlyApprovedOutbound":
            for rule_name, rule in SYSTEM_RULES.items():
                rules.setdefault(rule_name, copy.deepcopy(dict(rule)))
        else:  # the system rules belong to the approved-outbound mode
            for rule_name in SYSTEM_RULES:
                rules.pop(rule_name, None)
        return new

    # ---------------------------------------------------------------- outbound rules

    def _check_rule(self, name: str, rule: Any) -> None:
        if not _NAME.fullmatch(name):
            raise _bad_request(f"The outbound rule name '{name}' is not valid.", "InvalidOutboundRuleName")
        properties = rule if isinstance(rule, dict) else None
        if properties is None:
            raise _bad_request(f"The outbound rule '{name}' must be an object.", "InvalidRequestContent")
        kind = properties.get("type")
        if kind not in RULE_TYPES:
            raise _bad_request(
                f"The outbound rule type must be one of {', '.join(RULE_TYPES)}, not {kind!r}.",
                "InvalidOutboundRuleType",
            )
        category = properties.get("category", "UserDefined")
        if category not in RULE_CATEGORIES:
            raise _bad_request(
                f"The outbound rule category must be one of {', '.join(RULE_CATEGORIES)}, not {category!r}.",
                "InvalidOutboundRuleCategory",
            )
        destination = properties.get("destination")
        if kind == "FQDN" and (not isinstance(destination, str) or not destination):
            raise _bad_request(
                "An FQDN outbound rule's destination must be a host name.", "InvalidOutboundRuleDestination"
            )
        if kind != "FQDN" and not isinstance(destination, dict):
            raise _bad_request(
                f"A {kind} outbound rule's destination must be an object.", "InvalidOutboundRuleDestination"
            )

    def _outbound_rule(
        self,
        request: Request,
        route: str,
        path: str,
        context: ev.WriteContext | None,
        api_version: str,
        sub: str,
        fail: bool,
    ) -> Response:
        parts = path.split("/")
        account_id = "/".join(parts[:9])
        key = account_id.lower()
        network_path = "/".join(parts[:11])
        with self.lock:
            settings = self.managed_networks.get(key)
            if settings is None or parts[10].lower() != "default":
                raise _arm._not_found(network_path)
            rules: dict[str, Any] = settings.setdefault("outboundRules", {})
            if route == "rule_list":
                if request.method != "GET":
                    raise _method_not_allowed(request.method, path)
                ordered = sorted(rules.items(), key=lambda item: item[1].get("category") != "UserDefined")
                return self._read({"value": [{"properties": copy.deepcopy(r)} for _, r in ordered]}, sub)
            name = parts[12]
            found = next((n for n in rules if n.lower() == name.lower()), None)
            if request.method == "GET":
                if found is None:
                    raise _arm._not_found(path)
                return self._read({"properties": copy.deepcopy(rules[found])}, sub)
            if request.method not in ("PUT", "DELETE"):
                raise _method_not_allowed(request.method, path)
            assert context is not None
            if request.method == "DELETE" and found is None:
                return _arm.Response(204, None, {})
            rule: dict[str, Any] | None = None
            if request.method == "PUT":
                rule = self.app._parse_body(request).get("properties")
                self._check_rule(name, rule)
            self._begin_write(key, account_id)
            headers = self.app._write_gate(sub)
            if not fail:
                if rule is None:
                    assert found is not None
                    del rules[found]
                else:
                    rules[found or name] = _rule_settings(rule, status="Inactive")  # Active when it ends
            network_id = str(settings.get("networkId"))
            headers.update(
                self._start(
                    account_id,
                    path,
                    context,
                    api_version,
                    fail,
                    f"{network_id}_{uuid.uuid4()}",
                    network_id,
                    delete=rule is None,
                    rule=None if rule is None else (found or name),
                )
            )
        return _arm.Response(202, None, headers)

    # ---------------------------------------------------------------- the asynchronous operation

    def _begin_write(self, key: str, account_id: str) -> None:
        if key in self._writing:  # one write at a time per managed network
            raise self.app._conflict(f"{account_id}/managedNetworks/default")
        self.app._check_locks(account_id, delete=False)

    def _start(
        self,
        account_id: str,
        path: str,
        context: ev.WriteContext,
        api_version: str,
        fail: bool,
        status_id: str,
        network_id: str,
        *,
        delete: bool = False,
        rule: str | None = None,
    ) -> dict[str, str]:
        """Start the write's operation; its response headers (recorded: Azure-AsyncOperation at the
        mfeOperationsStatus URL, Location at the resource)."""
        key = account_id.lower()
        self._writing.add(key)
        account = self.app.accounts[key]

        def finish(operation: _Operation) -> None:
            failed = operation.final_status == "Failed"
            with self.lock:
                self._writing.discard(key)
                settings = self.managed_networks.get(key)
                if settings is not None:
                    settings["provisioningState"] = operation.final_status
                    if rule is not None and not failed and rule in settings.get("outboundRules", {}):
                        settings["outboundRules"][rule]["status"] = "Active"
            assert operation.context is not None  # every child write runs with its caller's context
            self.app.emit_child_write(path, None, operation.context, delete=delete, failed=failed)

        operation_id = f"mnet:{network_id}:{status_id}"
        operation = self.app.new_operation(
            account,
            path,
            context,
            "Failed" if fail else "Succeeded",
            on_finish=finish,
            operation_id=operation_id,
            status_id=status_id,
        )
        base = self.app.base_url
        return {
            "Azure-AsyncOperation": (
                f"{base}/subscriptions/{operation.subscription}/providers/Microsoft.MachineLearningServices"
                f"/locations/{operation.location}/mfeOperationsStatus/{operation_id}?api-version={api_version}"
            ),
            "Location": f"{base}{path}?api-version={api_version}",
            "Retry-After": "0",
        }

    def operation_status(self, op_id: str) -> Response:
        """GET of an mfeOperationsStatus URL: `{"id", "status"}` (and `error` when it failed)."""
        operation = self.app.poll_operation(op_id)
        with self.lock:
            body: dict[str, Any] = {"id": operation.status_id or operation.id, "status": operation.status}
            if operation.status == "Failed":
                body["error"] = {
                    "code": "ProvisioningFailed",
                    "message": f"The operation on '{operation.resource_id}' failed.",
                }
            in_progress = operation.status == "InProgress"
        return _arm.Response(200, body, {"Retry-After": "0"} if in_progress else {})

    # ---------------------------------------------------------------- capability hosts

    def _capability_host(
        self,
        request: Request,
        route: str,
        path: str,
        context: ev.WriteContext | None,
        api_version: str,
        sub: str,
        fail: bool,
    ) -> Response:
        account_id = "/".join(path.split("/")[:9])
        prefix = f"{account_id}/capabilityHosts/".lower()
        with self.lock:
            if route == "caphost_list":
                if request.method != "GET":
                    raise _method_not_allowed(request.method, path)
                keys = sorted(k for k in self.capability_hosts if k.startswith(prefix))
                page = self.app.paged(
                    keys, lambda k: copy.deepcopy(self.capability_hosts[k]), request, path, api_version
                )
                return self._read(page, sub)
            key = path.lower()
            existing = self.capability_hosts.get(key)
            if request.method == "GET":
                if existing is None:
                    raise _arm._not_found(path)
                return self._read(copy.deepcopy(existing), sub)
            if request.method not in ("PUT", "DELETE"):
                raise _method_not_allowed(request.method, path)
            assert context is not None
            self.app._check_locks(account_id, delete=request.method == "DELETE")
            if request.method == "DELETE":
                if existing is None:
                    return _arm.Response(204, None, {})
                return self._delete_capability_host(account_id, path, context, api_version, sub, fail)
            name = path.rsplit("/", 1)[-1]
            if not _HOST_NAME.fullmatch(name):
                raise _bad_request(
                    f"The capability host name '{name}' is not valid.", "InvalidCapabilityHostName"
                )
            properties = self.app._parse_body(request).get("properties")
            if not isinstance(properties, dict):
                raise _bad_request("properties is required.", "InvalidRequestContent")
            subnet = properties.get("customerSubnet")
            if subnet is not None and not isinstance(subnet, str):
                raise _bad_request("properties.customerSubnet must be a subnet's resource ID.")
            public = properties.get("enablePublicHostingEnvironment")
            if public is not None and not isinstance(public, bool):
                raise _bad_request("properties.enablePublicHostingEnvironment must be true or false.")
            headers = self.app._write_gate(sub)
            body: dict[str, Any] = {
                "id": path,
                "name": name,
                "type": CAPABILITY_HOST_TYPE,
                "properties": {
                    **copy.deepcopy(properties),
                    "provisioningState": "Failed" if fail else "Succeeded",
                },
            }
            self.capability_hosts[key] = body
            result = copy.deepcopy(body)
        self.app.emit_child_write(path, None, context, failed=fail)
        return _arm.Response(201 if existing is None else 200, result, headers)

    def _delete_capability_host(
        self, account_id: str, path: str, context: ev.WriteContext, api_version: str, sub: str, fail: bool
    ) -> Response:
        """202 with Location at the account operations' operationResults (204 once it ended)."""
        headers = self.app._write_gate(sub)

        def finish(operation: _Operation) -> None:
            failed = operation.final_status == "Failed"
            with self.lock:
                if not failed:
                    self.capability_hosts.pop(path.lower(), None)
            assert operation.context is not None  # every child write runs with its caller's context
            self.app.emit_child_write(path, None, operation.context, delete=True, failed=failed)

        account = self.app.accounts[account_id.lower()]
        operation = self.app.new_operation(
            account,
            path,
            context,
            "Failed" if fail else "Succeeded",
            on_finish=finish,
            provider="Microsoft.CognitiveServices",
        )
        links = self.app._operation_headers(operation)
        headers.update({"Location": links["Location"], "Retry-After": "0"})
        return _arm.Response(202, None, headers)

    # ---------------------------------------------------------------- network security perimeters

    def _nsp(self, request: Request, route: str, path: str, api_version: str, sub: str) -> Response:
        if request.method != "GET":  # read-only: the association lives on the perimeter
            raise _method_not_allowed(request.method, path)
        account_id = "/".join(path.split("/")[:9])
        prefix = f"{account_id}/networkSecurityPerimeterConfigurations/".lower()
        with self.lock:
            if route == "nsp_list":
                keys = sorted(k for k in self.nsp_configurations if k.startswith(prefix))
                page = self.app.paged(
                    keys, lambda k: copy.deepcopy(self.nsp_configurations[k]), request, path, api_version
                )
                return self._read(page, sub)
            found = self.nsp_configurations.get(path.lower())
            if found is None:
                raise _arm._not_found(path)
            return self._read(copy.deepcopy(found), sub)


def _rule_settings(rule: Mapping[str, Any], *, status: Literal["Active", "Inactive"]) -> dict[str, Any]:
    """An outbound rule as the managed network stores and answers it."""
    stored = {k: copy.deepcopy(v) for k, v in rule.items() if k != "status"}
    stored.setdefault("category", "UserDefined")
    return {"status": status, **stored}
