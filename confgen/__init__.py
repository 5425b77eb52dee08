"""confgen: score-based 3D conformer generation for small molecules."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "generate"]


def load_model(path=None, device="cpu"):
    """Load a score model from a checkpoint (``None`` = the shipped default model).

    Args:
        path: checkpoint path, or ``None`` for the default model shipped in the package.
        device: torch device string.

    Returns:
        A :class:`confgen.models.score_net.ScoreModel` in eval mode.
    """
    from confgen import checkpoint

    return checkpoint.load_model(path, device=device)


def generate(smiles_or_mol, num_confs, model=None, seed=None, preset=None, **kwargs):
    """Generate conformers for one molecule; returns an RDKit Mol (explicit H) with ``num_confs`` conformers.

    Further keyword arguments (``relax``, ``stats``, ``device``, ...) are those of
    :func:`confgen.generation.generate` (the fields of :class:`confgen.generation.GenerationRequest`, and
    ``stats`` / ``errors``).
    """
    from confgen import generation

    return generation.generate(smiles_or_mol, num_confs, model=model, seed=seed, preset=preset, **kwargs)
