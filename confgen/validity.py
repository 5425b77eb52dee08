"""Physical validity of conformers: the ``posebusters`` package's molecule checks (config ``"mol"``).

The checks: RDKit sanitisation, InChI conversion, connectivity, no radicals, bond lengths, bond angles and
internal clashes against distance-geometry bounds, aromatic ring flatness, non-aromatic ring non-flatness,
double-bond flatness, and internal energy (UFF energy at most 100 x the mean of a 50-conformer ETKDG + UFF
ensemble; the ensemble is computed once per molecule and cached by PoseBusters). Everything runs offline.
Cost measured here: about 1 s for the first conformer of a molecule (the energy ensemble), then about
0.1 s per conformer (``scripts/bench_sample.py --validity``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rdkit import Chem, rdBase

#: the PoseBusters configuration used
POSEBUSTERS_CONFIG = "mol"


@dataclass
class ValidityResult:
    """PoseBusters result of one conformer.

    Attributes:
        passed: every check passed.
        failed: names of the failed checks (PoseBusters' column names, e.g. ``"bond_lengths"``).
    """

    passed: bool
    failed: list[str] = field(default_factory=list)


def check_validity(mol: Chem.Mol, conf_ids: list[int] | None = None) -> list[ValidityResult]:
    """Run the PoseBusters ``"mol"`` checks on conformers of one molecule.

    Args:
        mol: RDKit Mol with explicit hydrogens and conformers.
        conf_ids: conformers to check (default: all, in order).

    Returns:
        One :class:`ValidityResult` per conformer, in the order of ``conf_ids``. A check that could not be
        computed (PoseBusters gives NaN) counts as failed.
    """
    return check_validity_many([(mol, conf_ids)])[0]


def check_validity_many(items: list[tuple[Chem.Mol, list[int] | None]]) -> list[list[ValidityResult]]:
    """:func:`check_validity` for several molecules in one PoseBusters run.

    Args:
        items: ``(mol, conf_ids)`` pairs (``conf_ids`` ``None`` = all conformers).

    Returns:
        Per molecule, one :class:`ValidityResult` per conformer.
    """
    from posebusters import PoseBusters

    singles: list[Chem.Mol] = []
    owners: list[int] = []
    for k, (mol, conf_ids) in enumerate(items):
        ids = [c.GetId() for c in mol.GetConformers()] if conf_ids is None else list(conf_ids)
        for cid in ids:
            one = Chem.Mol(mol)
            one.RemoveAllConformers()
            conf = Chem.Conformer(mol.GetConformer(cid))
            conf.SetId(0)  # PoseBusters' energy module reads conformer 0
            one.AddConformer(conf)
            singles.append(one)
            owners.append(k)
    out: list[list[ValidityResult]] = [[] for _ in items]
    if not singles:
        return out
    pb_logger = logging.getLogger("posebusters")
    level = pb_logger.level
    pb_logger.setLevel(logging.ERROR)
    try:
        with _quiet():
            table = PoseBusters(config=POSEBUSTERS_CONFIG, max_workers=0).bust(singles, full_report=False)
    finally:
        pb_logger.setLevel(level)
    for owner, (_, row) in zip(owners, table.iterrows()):
        failed = [str(col) for col, value in row.items() if not _true(value)]
        out[owner].append(ValidityResult(passed=not failed, failed=failed))
    return out


def _true(value) -> bool:
    try:
        return bool(value) and value == value  # NaN -> False
    except (TypeError, ValueError):
        return False


class _quiet:
    def __enter__(self):
        self._block = rdBase.BlockLogs()
        return self

    def __exit__(self, *exc):
        del self._block
        return False
