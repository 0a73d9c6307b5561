"""The package's imports point one way (README/CONTRIBUTING): no cycles, and the few rules the
design rests on, e.g. `diffusion` knows nothing of U-Nets and `neuro` nothing of torch or diffusion."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chapter13"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in the file, function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _package_deps(name: str) -> set[str]:
    top = {".".join(m.split(".")[:2]) for m in MODULES[name] if m.startswith("chapter13.")}
    return {m for m in top if m in MODULES and m != name}


FORBIDDEN = {
    "chapter13.config": {"chapter13."},
    "chapter13.attention": {"chapter13."},
    "chapter13.diffusion": {
        "chapter13.unet",
        "chapter13.attention",
        "chapter13.multimodal",
        "chapter13.neuro",
    },
    "chapter13.neuro": {"torch", "chapter13.diffusion", "chapter13.unet", "chapter13.train"},
    "chapter13.data": {"chapter13.diffusion", "chapter13.unet", "chapter13.multimodal"},
}


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_forbidden_imports(module):
    if module not in MODULES:
        pytest.skip(f"{module} does not exist yet")
    bad = {m for m in MODULES[module] for prefix in FORBIDDEN[module] if m == prefix or m.startswith(prefix)}
    bad = {m for m in bad if m != module}
    assert not bad, f"{module} must not import {sorted(bad)}"


def test_no_import_cycles():
    graph = {name: _package_deps(name) for name in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
