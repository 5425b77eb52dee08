"""confgen.chem is the bottom layer: it imports nothing above the foundation and works without torch."""

import ast
import subprocess
import sys
from pathlib import Path

CHEM = Path(__file__).resolve().parents[1] / "confgen" / "chem"
FOUNDATION = ("confgen.errors", "confgen.rdlog", "confgen.options", "confgen.progress", "confgen.workers")


def _confgen_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("confgen"):
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("confgen")]
    return out


def test_chem_imports_only_chem_and_the_foundation():
    for path in sorted(CHEM.glob("*.py")):
        for module in _confgen_imports(path):
            assert module.startswith("confgen.chem") or module in FOUNDATION, f"{path.name} imports {module}"


def test_chem_modules_import_without_torch():
    modules = [f"confgen.chem.{p.stem}" for p in sorted(CHEM.glob("*.py")) if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            "sys.modules['torch'] = None  # any import of torch fails\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
