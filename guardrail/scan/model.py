"""What a deployment would create, as the scanner reads it from a template or a plan: each Azure AI
services account (its name, kind and properties, some values possibly `Unresolved`), where it is
written in the source, the scope it deploys to, and its child resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from guardrail.scan.expressions import Unresolved

ACCOUNT_TYPE: Final = "Microsoft.CognitiveServices/accounts"
#: The account's child resource types the scanner collects, lower-cased (full types). Only
#: privateEndpointConnections feeds a rule today; the agent-era children (managedNetworks and their
#: outboundRules, capabilityHosts) are kept on the account for the rules of issue #24.
CHILD_TYPES: Final = frozenset(
    {
        "microsoft.cognitiveservices/accounts/privateendpointconnections",
        "microsoft.cognitiveservices/accounts/managednetworks",
        "microsoft.cognitiveservices/accounts/managednetworks/outboundrules",
        "microsoft.cognitiveservices/accounts/capabilityhosts",
    }
)
PRIVATE_ENDPOINT_CONNECTIONS: Final = "microsoft.cognitiveservices/accounts/privateendpointconnections"


@dataclass(frozen=True, slots=True)
class Child:
    """A child resource of an account: full type, full name (`account/child[/grandchild]`)."""

    type: str
    name: str | Unresolved
    properties: Any
    source: str
    line: int

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name if isinstance(self.name, str) else None,
            "source": self.source,
            "line": self.line,
        }


@dataclass(slots=True)
class Deployed:
    """One resource a template or plan would deploy that the scanner judges: an account, or a
    deployment it cannot follow (`problem`: e.g. a linked template)."""

    file: str
    source: str  # where in the file: a JSON path such as resources[0], or a Terraform address
    line: int  # the line of the resource's properties (or of the resource)
    type: str
    name: str | Unresolved
    kind: Any = None
    properties: Any = None
    subscription: str | None = None
    resource_group: str | None = None
    children: list[Child] = field(default_factory=list)
    problem: str | None = None  # the whole resource cannot be judged (why)


def source_path(path: tuple[str | int, ...]) -> str:
    """A JSON path as text: ("resources", 0, "properties") -> resources[0].properties."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif out:
            out += f".{step}"
        else:
            out = step
    return out or "$"
