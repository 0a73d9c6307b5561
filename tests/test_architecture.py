"""The package's structure, as README.md / CONTRIBUTING.md draw it: a layer table, imports that point
down it only, no cycles, every import at the top of its module, and module names resolved from
strings in one place only, the registry (``chapter13/recipes/__init__.py``).

The layers, lowest first (a module imports only from layers below its own; the members of one
package, ``recipes.*``, ``book.*``, ``exercises.*`` and ``widgets.*``, may also import each other, and
a package's ``__init__`` its own members):
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chapter13"
REGISTRY = "chapter13.recipes"

LAYERS: list[tuple[str, set[str]]] = [
    ("foundations: no package imports", {"chapter13", "config", "cost", "attention", "guidance", "neuro", "recipes", "book", "book.*", "exercises"}),
    ("math", {"cli", "data", "diffusion", "unet", "fitting"}),
    ("data sets and storage", {"captions", "synthetic", "checkpoints"}),
    ("models, measures and the training loop", {"evaluate", "multimodal", "codelab", "audio", "hierarchy", "train"}),
    ("models built on models", {"temporal", "text2image", "toy", "plotting"}),
    ("latent diffusion, the take-aways and the exercises", {"latent", "takeaways", "exercises.*"}),
    ("recipes: train, measure, serve the shipped checkpoints", {"recipes.*"}),
    ("front ends", {"sample", "widgets", "widgets.*"}),
]  # fmt: skip
SIBLINGS = ("recipes.", "book.", "exercises.", "widgets.")

MODEL_MODULES = {"diffusion", "unet", "attention", "codelab", "text2image", "latent", "temporal", "audio", "multimodal", "hierarchy", "guidance"}  # fmt: skip
"""Models and their math only: they never train, register, save or load checkpoints."""

FORBIDDEN = {
    **{m: {"train", "checkpoints", "recipes", "recipes.*"} for m in MODEL_MODULES},
    "diffusion": {"unet", "attention", "multimodal", "neuro", "train", "checkpoints", "recipes"},
    "neuro": {"torch", "diffusion", "unet", "train"},
    "fitting": {"torch", "diffusion", "unet", "train", "data", "plotting", "widgets", "widgets.*"},
    "data": {"diffusion", "unet", "multimodal"},
    "checkpoints": {"recipes.*", "train"},
}
"""Rules the layers alone do not say (``torch`` means the third-party package)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _short(module: str) -> str:
    return "chapter13" if module == "chapter13" else module.removeprefix("chapter13.")


FILES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in FILES.items()}


def imports(tree: ast.Module) -> set[str]:
    """Every module the file imports, anywhere (``from chapter13 import x`` counts as ``chapter13.x``
    when ``x`` is a module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in FILES}
    return found


def package_deps(name: str) -> set[str]:
    """The package modules ``name`` imports (short names), itself and its parent packages left out."""
    deps = {_short(m) for m in imports(TREES[name]) if m in FILES}
    parents = {_short(".".join(name.split(".")[:i])) for i in range(1, name.count(".") + 1)}
    return deps - {_short(name)} - (parents - {"recipes"} if _short(name).startswith("recipes.") else parents)


def layer_of(short: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(short, pattern) for pattern in members):
            return index
    raise AssertionError(f"chapter13.{short} is in no layer of tests/test_architecture.py: add it to LAYERS")


def _matches(module: str, patterns: set[str]) -> bool:
    short = _short(module) if module.startswith("chapter13") else None
    for pattern in patterns:
        if short is not None and fnmatch.fnmatchcase(short, pattern):
            return True
        if pattern == "torch" and (module == "torch" or module.startswith("torch.")):
            return True
    return False


@pytest.mark.parametrize("name", sorted(FILES))
def test_imports_point_down_the_layers(name):
    short, level = _short(name), layer_of(_short(name))
    for dep in sorted(package_deps(name)):
        siblings = any(short.startswith(p) and dep.startswith(p) for p in SIBLINGS)
        member = dep.startswith(f"{short}.")  # a package's __init__ re-exporting its own modules
        assert layer_of(dep) < level or siblings or member, (
            f"chapter13.{short} ({LAYERS[level][0]}) imports chapter13.{dep} ({LAYERS[layer_of(dep)][0]}): "
            "imports point down the layer table only"
        )


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_forbidden_imports(module):
    bad = {m for m in imports(TREES[f"chapter13.{module}"]) if _matches(m, FORBIDDEN[module])}
    assert not bad, f"chapter13.{module} must not import {sorted(bad)}"


def test_no_import_cycles():
    graph = {_short(name): package_deps(name) for name in FILES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*trail[trail.index(nxt) :], nxt])}")
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def function_level_imports(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [
                ast.unparse(sub) for sub in ast.walk(node) if isinstance(sub, ast.Import | ast.ImportFrom)
            ]
    return found


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_import_sits_at_the_top(name):
    assert not function_level_imports(TREES[name]), f"{name}: move these imports to the top of the module"


def string_imports(tree: ast.Module) -> list[str]:
    """Calls that import a module named by a string, and ``"chapter13.x:y"`` import-path strings."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func in ("importlib.import_module", "import_module", "__import__", "importlib.__import__"):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith("chapter13.") and ":" in node.value and " " not in node.value:
                found.append(repr(node.value))
    return found


@pytest.mark.parametrize("name", sorted(set(FILES) - {REGISTRY}))
def test_no_string_imports_outside_the_registry(name):
    assert not string_imports(TREES[name]), (
        f"{name} imports by string: {string_imports(TREES[name])}. Import at the top of the module; only "
        f"{REGISTRY} may resolve names (checkpoint families) to modules"
    )


def test_the_registry_resolves_only_its_own_families():
    calls = string_imports(TREES[REGISTRY])
    assert calls == ["importlib.import_module(f'{__name__}.{FAMILIES[name]}')"], calls


def test_the_checks_see_what_they_guard():
    """The helpers above catch each defect they exist for (so the tests above can fail)."""
    planted = ast.parse(
        "import importlib\n"
        "def f():\n    from chapter13 import train\n    return importlib.import_module('chapter13.codelab')\n"
        "PATH = 'chapter13.codelab:PatchUNet'\n"
    )
    assert function_level_imports(planted) == ["from chapter13 import train"]
    assert len(string_imports(planted)) == 2
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("not_a_module")
