"""Replaying a recorded ARM exchange (a condensed vcrpy cassette from ../shared/contracts/recorded-arm)
against the emulator, for the managed network's recordings: each interaction in order, compared by
status code, ARM error code, the async-operation headers' shapes, and the fields the guardrail reads
(`isolationMode`, `outboundRules`, an outbound rule's `properties`, terminal `provisioningState`s).

Runs of polls of one operation URL are replayed against the emulator's own operation (its IDs are
not the recording's): polled until it ends, every status before the end must be the recording's
non-terminal one and the end must be the recording's. A run that polls an operation the emulator did
not start (it answered the write synchronously: the account's own create) is skipped and named in
the transcript. `replay` returns the mismatches (empty: the emulator answered as ARM did).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

RECORDED_HOST = "https://management.azure.com"
TERMINAL = frozenset({"Succeeded", "Failed", "Canceled"})
_OPERATION = re.compile(r"/(operationResults|operationStatuses|mfeOperationsStatus)/", re.IGNORECASE)


class Answer(Protocol):
    status: int
    headers: dict[str, str]  # lower-cased names

    def json(self) -> Any: ...


Send = Callable[[str, str, Any], Answer]  # (method, full URL, JSON body or None) -> answer


@dataclass(frozen=True)
class Exchange:
    method: str
    uri: str
    body: Any  # the request's JSON body, or None
    status: int
    headers: dict[str, str]  # the recorded response headers kept (lower-cased)
    answer: Any  # the response's JSON body, or None


def load(path: Path) -> list[Exchange]:
    import yaml

    exchanges = []
    for item in yaml.safe_load(path.read_text())["interactions"]:
        request, response = item["request"], item["response"]
        text = (response.get("body") or {}).get("string") or ""
        exchanges.append(
            Exchange(
                method=request["method"],
                uri=request["uri"],
                body=json.loads(request["body"]) if request.get("body") else None,
                status=int(response["status"]["code"]),
                headers={k.lower(): v[0] for k, v in (response.get("headers") or {}).items()},
                answer=json.loads(text) if text else None,
            )
        )
    return exchanges


def _is_poll(exchange: Exchange) -> bool:
    return exchange.method == "GET" and bool(_OPERATION.search(exchange.uri))


def _shape(url: str) -> str:
    """An operation URL's shape: host, IDs and query dropped."""
    path = url.split("?", 1)[0].split("/subscriptions/", 1)[-1]
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{guid}", path)
    return re.sub(r"/(mnet:)[^/]+$", r"/\1{id}", path).replace("/locations/eastus/", "/locations/{loc}/")


def fields(body: Any) -> dict[str, Any]:
    """What the replay compares in a body: the managed network's mode and rules, an outbound rule's
    properties, a list's rules, an error's code, and a terminal provisioningState."""
    if not isinstance(body, dict):
        return {}
    found: dict[str, Any] = {}
    if isinstance(body.get("error"), dict):
        found["error"] = body["error"].get("code")
    if isinstance(body.get("value"), list):
        found["value"] = [item.get("properties") for item in body["value"] if isinstance(item, dict)]
    properties = body.get("properties")
    if isinstance(properties, dict):
        network = properties.get("managedNetwork")
        if isinstance(network, dict):
            found["isolationMode"] = network.get("isolationMode")
            found["outboundRules"] = network.get("outboundRules")
        elif "type" in properties and "destination" in properties:  # an outbound rule
            found["rule"] = properties
        state = properties.get("provisioningState")
        if state in TERMINAL:
            found["provisioningState"] = state
    return found


def replay(
    exchanges: list[Exchange], send: Send, endpoint: str, transcript: list[str] | None = None
) -> list[str]:
    """Send each recorded request to `endpoint` in order; the mismatches with the recording."""
    problems: list[str] = []
    log = transcript if transcript is not None else []
    operation: str | None = None  # the emulator's Azure-AsyncOperation of the last write
    index = 0
    while index < len(exchanges):
        recorded = exchanges[index]
        where = f"#{index} {recorded.method} {recorded.uri.split('?')[0].split('/providers/')[-1]}"
        if _is_poll(recorded):
            run = [recorded]
            while index + len(run) < len(exchanges) and exchanges[index + len(run)].uri == recorded.uri:
                run.append(exchanges[index + len(run)])
            index += len(run)
            if operation is None:
                log.append(
                    f"{where}: {len(run)} polls skipped (the emulator answered the write synchronously)"
                )
                continue
            if _shape(operation) != _shape(recorded.uri):
                problems.append(f"{where}: polled {_shape(operation)}, recorded {_shape(recorded.uri)}")
            wanted = [e.answer.get("status") for e in run]
            got: list[Any] = []
            for _ in range(50):
                answer = send("GET", operation, None)
                if answer.status != run[0].status:
                    problems.append(f"{where}: poll answered {answer.status}, recorded {run[0].status}")
                    break
                got.append((answer.json() or {}).get("status"))
                if got[-1] in TERMINAL:
                    break
            if got[-1:] != wanted[-1:] or any(s != wanted[0] for s in got[:-1]):
                problems.append(f"{where}: operation statuses {got}, recorded {wanted}")
            log.append(f"{where}: {len(run)} polls recorded, {len(got)} sent: {got}")
            operation = None
            continue
        index += 1
        url = recorded.uri.replace(RECORDED_HOST, endpoint, 1)
        answer = send(recorded.method, url, recorded.body)
        body = answer.json() if answer.status != 204 else None
        log.append(f"{where}: {answer.status} (recorded {recorded.status})")
        if answer.status != recorded.status:
            problems.append(f"{where}: status {answer.status}, recorded {recorded.status}: {body}")
            continue
        want, have = fields(recorded.answer), fields(body)
        for key, value in want.items():
            if have.get(key) != value:
                problems.append(f"{where}: {key} {have.get(key)!r}, recorded {value!r}")
        operation = answer.headers.get("azure-asyncoperation")
        recorded_location = recorded.headers.get("location")
        if recorded_location and answer.headers.get("location", "").replace(endpoint, RECORDED_HOST, 1) != (
            recorded_location
        ):
            problems.append(
                f"{where}: Location {answer.headers.get('location')}, recorded {recorded_location}"
            )
        if "azure-asyncoperation" in recorded.headers and operation is None and "managedNetworks" in url:
            problems.append(f"{where}: no Azure-AsyncOperation header, recorded one")
    return problems
