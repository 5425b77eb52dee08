"""confgen's SDF output: one record per conformer with the confgen properties (:mod:`confgen.io.properties`),
written atomically (:class:`AtomicSDFWriter`), or as record texts to be assembled elsewhere
(:func:`conformer_records`)."""

from __future__ import annotations

import os
from pathlib import Path

from rdkit import Chem

from confgen.chem.files import AtomicFile
from confgen.errors import ConfgenError
from confgen.io.properties import (
    CONFORMER_PROPS,
    PROP_CONF_ID,
    PROP_INDEX,
    PROP_MMFF_ENERGY,
    PROP_SMILES,
)


class AtomicSDFWriter:
    """Write molecules to an SDF through a temporary file that replaces ``path`` only on success.

    An interrupted or failed run leaves no (truncated) output file, and a run that writes no conformer leaves
    no (empty) one: ``path`` is then left as it was. Use as a context manager::

        with AtomicSDFWriter("out.sdf") as w:
            w.write_conformers(mol, name=..., smiles=..., index=...)

    Args:
        path: output file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.num_written = 0
        self._file: AtomicFile | None = None

    def __enter__(self) -> "AtomicSDFWriter":
        if self.path.is_dir():
            raise ConfgenError(f"output {self.path} is a directory")
        self._file = AtomicFile(self.path, make_dirs=False)
        return self

    def write_conformers(self, mol: Chem.Mol, *, name: str, smiles: str, index: int,
                         energies: list[float] | None = None) -> None:
        """Write every conformer of ``mol`` as one record: title ``name``, confgen properties.

        The Mol's own properties (e.g. ``confgen_removed_fragments``, ``confgen_stereo_policy``) are written
        too; the per-conformer properties of :data:`CONFORMER_PROPS` go to that conformer's record.

        Args:
            mol: Mol with conformers (explicit hydrogens).
            name: record title.
            smiles: value of :data:`PROP_SMILES`.
            index: value of :data:`PROP_INDEX`.
            energies: per-conformer MMFF energies (:data:`PROP_MMFF_ENERGY`); ``None``: each conformer's own
                :data:`PROP_MMFF_ENERGY` property where it has one.
        """
        records = conformer_records(mol, name=name, smiles=smiles, index=index, energies=energies)
        self._file.fh.write("".join(records))
        self.num_written += len(records)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self.num_written:
            self._file.commit()
        else:
            self._file.discard()


def conformer_records(mol: Chem.Mol, *, name: str, smiles: str, index: int,
                      energies: list[float] | None = None) -> list[str]:
    """The SDF records of every conformer of ``mol`` (one string each), as :class:`AtomicSDFWriter` writes them:
    title ``name``, the confgen properties, the Mol's own properties, the conformer's :data:`CONFORMER_PROPS`.

    A record does not depend on its position in the file (no running ``(n)`` number after the property names),
    so an output assembled from chunks computed elsewhere, or from the concatenated outputs of shards, is byte for
    byte the output of one run.
    """
    out = Chem.Mol(mol)
    out.SetProp("_Name", name)
    out.SetProp(PROP_SMILES, smiles)
    out.SetIntProp(PROP_INDEX, int(index))
    texts = []
    for k, conf in enumerate(out.GetConformers()):
        out.SetIntProp(PROP_CONF_ID, k)
        for prop in CONFORMER_PROPS:
            value = conf.GetPropsAsDict().get(prop) if conf.HasProp(prop) else None
            if prop == PROP_MMFF_ENERGY and energies is not None:
                value = energies[k]
            if value is None:
                if out.HasProp(prop):
                    out.ClearProp(prop)
            elif isinstance(value, float):
                out.SetDoubleProp(prop, value)
            else:
                out.SetIntProp(prop, int(value))
        texts.append(Chem.SDWriter.GetText(out, confId=conf.GetId()))
    return texts


def read_sdf_conformers(path: str | os.PathLike) -> list[Chem.Mol]:
    """Read an SDF written by confgen (one Mol per record, hydrogens kept)."""
    return [m for m in Chem.SDMolSupplier(str(path), removeHs=False) if m is not None]
