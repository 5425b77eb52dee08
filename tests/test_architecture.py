"""The package's layering, checked from the source with ``ast`` (docs/architecture.md describes the layers).

A module may import only from its own layer or the layers below it, and never uses another module's private
(``_name``) attributes. Imports inside functions count too: a lazy import that runs upward is still upward.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "confgen"

#: layer of each module (longest dotted prefix wins); the order is the one docs/architecture.md draws
LAYERS: dict[str, int] = {}
for _layer, _names in enumerate([
    ["confgen.errors", "confgen.rdlog", "confgen.options", "confgen.progress", "confgen.workers",
     "confgen.lazy"],
    ["confgen.chem"],
    ["confgen.data", "confgen.evaluation", "confgen.validity", "confgen.io"],
    ["confgen.noise", "confgen.models", "confgen.config", "confgen.checkpoint", "confgen.checkpoints",
     "confgen.losses", "confgen.devices"],
    ["confgen.sampling", "confgen.training", "confgen.batching"],
    ["confgen.generation"],
    ["confgen.library", "confgen.benchmark", "confgen.prepare"],
    ["confgen.commands", "confgen.cli", "confgen.__main__", "confgen.__init__"],
]):
    for _name in _names:
        LAYERS[_name] = _layer


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1 and parts[:-1] != ["confgen"]:
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not MODULES[module].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[tuple[str, int]]:
    """(imported confgen module, line) for every import in ``module``, at any depth of the code."""
    tree = ast.parse(MODULES[module].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "confgen"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target.split(".")[0] != "confgen":
                continue
            for a in node.names:  # `from confgen import chem` imports the submodule confgen.chem
                sub = f"{target}.{a.name}"
                if target == "confgen" and sub not in MODULES and a.name.startswith("__"):
                    continue  # package metadata (__version__), not code of the top layer
                out.append((sub if sub in MODULES else target, node.lineno))
    return out


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m != "confgen" and layer_of(m) is None]
    assert not missing, f"modules outside every layer (add them to LAYERS and docs/architecture.md): {missing}"


def test_no_upward_import():
    upward = []
    for module in MODULES:
        mine = layer_of(module) if module != "confgen" else max(LAYERS.values())
        for target, line in imports_of(module):
            theirs = layer_of(target) if target != "confgen" else max(LAYERS.values())
            if theirs is not None and mine is not None and theirs > mine:
                upward.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target} "
                              f"(layer {theirs} > {mine})")
    assert not upward, "\n".join(upward)


def test_chem_layer_is_torch_free():
    offenders = []
    for module, path in MODULES.items():
        if layer_of(module) is not None and layer_of(module) <= 1:
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{module}: {n}" for n in names if n.split(".")[0] in ("torch", "torch_geometric")]
    assert not offenders, offenders


def private_uses(tree: ast.AST, module: str | None, label: str) -> list[str]:
    """Private names of other confgen modules that ``tree`` imports (``from confgen.x import _y``) or uses
    (``x._y`` with ``x`` a confgen module); ``module`` is the tree's own module (its privates are its own)."""
    found = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node) if module else (node.module or "")
            if target.split(".")[0] != "confgen":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in MODULES:
                    aliases[a.asname or a.name] = sub
                elif a.name.startswith("_") and not a.name.startswith("__") and target != module:
                    found.append(f"{label}:{node.lineno} imports {target}.{a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("confgen") and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and aliases[node.value.id] != module):
            found.append(f"{label}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_private_names_of_other_modules():
    """``from confgen.x import _y`` and ``confgen_module._y`` only within the module that defines ``_y``."""
    found = []
    for module, path in MODULES.items():
        found += private_uses(ast.parse(path.read_text()), module, module)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "confgen"))
def test_module_size(module):
    """No file over about 600 lines (the limit leaves room for a module that is one idea)."""
    lines = MODULES[module].read_text().count("\n")
    assert lines <= 650, f"{module} has {lines} lines"


def test_scripts_use_only_public_names():
    """The measuring scripts are users of the package: they import public names only."""
    found = []
    for path in sorted((PACKAGE.parent / "scripts").glob("*.py")):
        found += private_uses(ast.parse(path.read_text()), None, path.name)
    assert not found, "\n".join(found)
