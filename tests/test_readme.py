"""The README's Python snippet runs as written (the equivalent of a doctest for a markdown file)."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_snippet_runs():
    blocks = _python_blocks(README.read_text())
    assert blocks, "the README has a Python snippet"
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
        mol, score = namespace["mol"], namespace["score"]
        assert mol.GetNumConformers() == 10
        assert isinstance(score, torch.Tensor) and tuple(score.shape) == (mol.GetNumAtoms(), 3)
        assert torch.isfinite(score).all()
