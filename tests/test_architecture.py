"""The product's shape, held by its own imports (issue #23, "one composition root", and the
architecture's "never" rules): no import circle in `guardrail/`; no environment read outside
`guardrail/settings.py`; one place that builds an Azure credential; no module-level state but the
worker's app and memos of pure functions; the adapters never import the loop; the product never
imports the workbench; the emulator imports nothing of the product.

`python -m tests.test_architecture` prints the figures (docs/development.md quotes them)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

PRODUCT = REPO / "guardrail"

#: Module-level objects that hold state on purpose: the worker's app (functions) and the memos of
#: pure functions (guardrail.memo.PerObject, by policy object; ipv4's parse cache). (The Teams
#: webhook redaction filter, `sinks.teams._REDACT`, is a constant-case logging filter: it lives on a
#: logger, and loggers are process-wide.)
KEPT_HOLDERS = {
    ("guardrail/functions.py", "_worker"),
    ("guardrail/engine.py", "children_for"),
    ("guardrail/engine.py", "_checks_for"),
    ("guardrail/rules/_base.py", "_exemptible_rules"),
    ("guardrail/rules/_base.py", "_RULINGS"),
    ("guardrail/rules/ip.py", "_inside_one_table"),
    ("guardrail/ipv4.py", "_CACHE"),
}
_MUTABLE_CALLS = {"dict", "list", "set", "Lock", "RLock", "defaultdict", "OrderedDict", "PerObject"}
_SHELL = ("observe", "heartbeat", "telemetry")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts)


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module `path` imports, at any depth (function-level and TYPE_CHECKING included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path = PRODUCT) -> dict[str, set[str]]:
    modules = {_module(p): p for p in _files(root)}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def environment_reads(root: Path = PRODUCT) -> list[str]:
    found = []
    for path in _files(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = ast.unparse(node) if isinstance(node, (ast.Attribute, ast.Call)) else ""
            if (isinstance(node, ast.Attribute) and text in ("os.environ", "os.getenv")) or (
                isinstance(node, ast.Call) and text.startswith("urllib.request.getproxies")
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def credential_sites(root: Path = PRODUCT) -> list[str]:
    """Where an azure-identity credential is constructed."""
    names = {"DefaultAzureCredential", "ManagedIdentityCredential", "default_credential"}
    found = []
    for path in _files(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in names:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def module_holders(root: Path = PRODUCT) -> list[tuple[str, str]]:
    """Module-level names bound to a mutable container, a lock, a memo or an instance, or
    rebound with `global`."""
    found: set[tuple[str, str]] = set()
    for path in _files(root):
        rel = str(path.relative_to(REPO))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            target, value = None, None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            if not isinstance(target, ast.Name) or target.id == "__all__":
                continue
            call = ast.unparse(value.func).split(".")[-1].lstrip("_") if isinstance(value, ast.Call) else ""
            empty = isinstance(value, (ast.Dict, ast.List, ast.Set)) and not (
                value.keys if isinstance(value, ast.Dict) else value.elts
            )
            constant = target.id.lstrip("_").isupper()  # CONSTANT_CASE: a table or a frozen value
            final = isinstance(node, ast.AnnAssign) and "Final" in ast.unparse(node.annotation)
            if (
                (empty and not final)
                or call in _MUTABLE_CALLS
                or (call[:1].isupper() and not constant)
                or (isinstance(value, ast.Constant) and value.value is None)
            ):
                found.add((rel, target.id))
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                found.update((rel, name) for name in node.names)
    return sorted(found)


#: The one circle left, the rule registry's: policy imports the registry (its rule IDs and remediate
#: defaults) at import time; the registry's modules and actions name `Policy` in type annotations
#: only (TYPE_CHECKING), so nothing circles at run time. (Before the reconciler's registry work it
#: took in the engine and wellformed too.)
KNOWN_CIRCLE = [
    "guardrail.actions",
    "guardrail.policy",
    "guardrail.rules",
    "guardrail.rules._base",
    "guardrail.rules.ip",
    "guardrail.rules.vnet",
]


def test_no_import_circle_but_the_known_one() -> None:
    assert [c for c in circles(import_graph()) if c != KNOWN_CIRCLE] == []


@pytest.mark.xfail(strict=True, reason="the rule registry's circle (KNOWN_CIRCLE): issue #23's registry work")
def test_the_product_has_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_only_the_settings_read_the_environment() -> None:
    assert [site for site in environment_reads() if not site.startswith("guardrail/settings.py:")] == []
    assert "os.environ" in (PRODUCT / "settings.py").read_text(encoding="utf-8")


def test_one_place_builds_the_azure_credential() -> None:
    assert {site.split(":")[0] for site in credential_sites()} == {"guardrail/credentials.py"}


def test_no_module_level_state_but_the_app_and_pure_memos() -> None:
    assert set(module_holders()) <= KEPT_HOLDERS, set(module_holders()) - KEPT_HOLDERS


def test_the_adapters_take_results_not_the_loop() -> None:
    graph = import_graph()
    for name in _SHELL:
        assert "guardrail.service" not in graph[f"guardrail.{name}"], name
        assert "guardrail.fanout" not in graph[f"guardrail.{name}"], name


def test_the_product_never_imports_the_workbench_and_the_emulator_nothing_of_the_product() -> None:
    for path in _files(PRODUCT):
        assert not [m for m in _imports(path) if m.startswith("guardrail_workbench")], path
    for path in _files(REPO / "guardrail_workbench" / "emulator"):
        assert not [m for m in _imports(path) if m == "guardrail" or m.startswith("guardrail.")], path


def figures(root: Path) -> dict[str, object]:
    global REPO
    saved, REPO = REPO, root
    try:
        product = root / "guardrail"
        graph = import_graph(product)
        return {
            "modules": len(graph),
            "import arrows": sum(len(v) for v in graph.values()),
            "circles": circles(graph),
            "environment reads": environment_reads(product),
            "credential sites": credential_sites(product),
            "module-level holders": module_holders(product),
        }
    finally:
        REPO = saved


if __name__ == "__main__":
    import json

    print(json.dumps(figures(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO), indent=1))
