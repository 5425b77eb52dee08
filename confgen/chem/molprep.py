"""Molecule preparation that needs only RDKit: the largest organic fragment of a salt or mixture, the
stereoisomers over unspecified stereo."""

from __future__ import annotations

from rdkit import Chem

from confgen.rdlog import quiet_rdkit

__all__ = ["invertible_nitrogens", "is_organic", "keep_largest_fragment", "stereoisomers"]


def is_organic(mol: Chem.Mol) -> bool:
    """Whether ``mol`` has a carbon atom."""
    return any(a.GetAtomicNum() == 6 for a in mol.GetAtoms())


def keep_largest_fragment(mol: Chem.Mol) -> tuple[Chem.Mol, list[str]]:
    """The largest organic fragment of ``mol`` and the SMILES of the others.

    The choice follows RDKit's ``LargestFragmentChooser(preferOrganic=True)`` counting heavy atoms (RDKit's
    own chooser counts explicit hydrogens as atoms, so it would pick cyclohexane over benzoic acid in an SDF
    with hydrogens): a fragment with carbon before one without, then more heavy atoms, then more atoms, then
    the larger mass, then the earlier one. Stereo, properties and coordinates of the kept fragment are kept.

    Returns:
        ``(mol, removed)``: ``mol`` itself and ``[]`` for a single-fragment molecule.
    """
    if len(Chem.GetMolFrags(mol)) < 2:
        return mol, []
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=True)
    if len(frags) < 2:
        return mol, []

    def key(k):
        f = frags[k]
        heavy = sum(a.GetAtomicNum() > 1 for a in f.GetAtoms())
        mass = sum(a.GetMass() for a in f.GetAtoms())
        return (is_organic(f), heavy, f.GetNumAtoms() + sum(a.GetTotalNumHs() for a in f.GetAtoms()), mass, -k)

    best = max(range(len(frags)), key=key)
    kept = Chem.Mol(frags[best])
    for name in mol.GetPropNames():
        kept.SetProp(name, mol.GetProp(name))
    removed = [Chem.MolToSmiles(Chem.RemoveHs(f, sanitize=False)) for k, f in enumerate(frags) if k != best]
    return kept, removed


def invertible_nitrogens(mol: Chem.Mol) -> list[int]:
    """Atoms of ``mol`` that are three-coordinate nitrogens without a chiral tag.

    A pyramidal nitrogen inverts (ammonia-like amines in nanoseconds; even aziridine nitrogens, barrier about
    17-20 kcal/mol for N-alkyl ones, in seconds at room temperature), so its two configurations are conformers
    of one molecule, not stereoisomers: GEOM's CREST ensembles hold both. RDKit still counts a nitrogen in a
    three-membered ring or at a ring fusion as a possible stereocentre. A bridgehead nitrogen whose
    configuration the rings fix needs no tag either: any conformer has the one the rings allow.
    """
    return [a.GetIdx() for a in mol.GetAtoms()
            if a.GetAtomicNum() == 7 and a.GetDegree() + a.GetTotalNumHs() == 3
            and a.GetChiralTag() == Chem.ChiralType.CHI_UNSPECIFIED]


def stereoisomers(mol: Chem.Mol, max_isomers: int) -> tuple[list[Chem.Mol], bool]:
    """The stereoisomers of ``mol`` over its unspecified stereocentres and stereo bonds.

    RDKit's ``EnumerateStereoisomers`` (only unassigned stereo, unique isomers, no embedding test), in its
    deterministic order; specified stereo is kept. Untagged three-coordinate nitrogens
    (:func:`invertible_nitrogens`) are not stereocentres here: their tags are cleared again, so that each
    conformer may have either configuration (an arbitrary tag would fix one, and one the rings forbid leaves a
    bridged molecule without any conformer).

    Returns:
        ``(isomers, more)``: at most ``max_isomers`` Mols (same atom order and properties as ``mol``; just
        ``[mol]`` when nothing is unspecified) and whether more isomers exist than were returned.
    """
    from rdkit.Chem.EnumerateStereoisomers import EnumerateStereoisomers, StereoEnumerationOptions

    options = StereoEnumerationOptions(onlyUnassigned=True, unique=True, tryEmbedding=False,
                                       maxIsomers=0)
    nitrogens = invertible_nitrogens(mol)
    isomers, seen = [], set()
    more = False
    with quiet_rdkit():
        for iso in EnumerateStereoisomers(mol, options=options):
            for idx in nitrogens:
                iso.GetAtomWithIdx(idx).SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
            key = Chem.MolToSmiles(iso)
            if key in seen:
                continue
            if len(isomers) == max_isomers:
                more = True
                break
            seen.add(key)
            isomers.append(iso)
    if len(isomers) == 1 and Chem.MolToSmiles(isomers[0]) == Chem.MolToSmiles(mol):
        return [mol], False
    return isomers, more
