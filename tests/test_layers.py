"""Imports point down the layers of ARCHITECTURE.md; cli/ and server/ never import each other
(except `shipyard server`, which starts the server runner)."""

from __future__ import annotations

import ast
from pathlib import Path

import shipyard

PACKAGE = Path(shipyard.__file__).parent

LAYERS = {
    "core": 0,
    "ports": 1,
    "wiring": 2,
    "services": 3,
    "edges": 4,
}
MODULE_LAYER = {
    "_version": "core",
    "_http": "core",
    "_listen": "core",
    "errors": "core",
    "entities": "core",
    "config": "core",
    "validation": "core",
    "store": "ports",
    "artifacts": "ports",
    "workspace": "wiring",
    "tracking": "services",
    "registry": "services",
    "models": "services",
    "pipelines": "services",
    "data": "services",
    "monitoring": "services",
    "deploy": "services",
    "features": "services",
    "security": "services",
    "cli": "edges",
    "server": "edges",
    "serving": "edges",
    "__main__": "edges",
}
ALLOWED_EDGE_IMPORTS = {
    ("cli", "shipyard.server.runner"),
    ("cli", "shipyard.serving.runner"),
    ("cli", "shipyard.serving.traffic"),
    ("cli", "shipyard.serving.traffic.DeploymentSpec"),
    ("cli", "shipyard.serving.batch"),
    ("cli", "shipyard.serving.batch.batch_predict"),
    ("__main__", "shipyard.cli.main"),
}


def _top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "shipyard":
        return None
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_imports_point_down() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "__init__.py" or "migrations" in rel.parts:
            continue
        src_top = rel.parts[0].removesuffix(".py")
        src_layer = MODULE_LAYER.get(src_top)
        assert src_layer, f"{rel}: module {src_top!r} has no layer in tests/test_layers.py"
        for imported in _imports(path):
            dst_top = _top(imported)
            if not dst_top or dst_top == src_top:
                continue
            dst_layer = MODULE_LAYER.get(dst_top)
            if dst_layer is None:
                continue
            if (src_top, imported) in ALLOWED_EDGE_IMPORTS:
                continue
            if LAYERS[dst_layer] > LAYERS[src_layer] or (
                src_layer == dst_layer == "edges" and src_top != dst_top
            ):
                problems.append(f"{rel} ({src_layer}) imports {imported} ({dst_layer})")
    assert not problems, "\n".join(sorted(problems))
