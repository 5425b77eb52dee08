"""confgen.data.readers.qm9 and .geometry: QM9 DFT geometries mapped onto SMILES graphs."""

import csv
import importlib.util
import itertools
import json

import numpy as np
import pytest
from rdkit import Chem

from confgen.chem.smiles import canonical_smiles
from confgen.data.readers import iter_molecules, map_geometry_to_smiles
from confgen.errors import InputError

from mol_helpers import bond_lengths, sorted_distances

QM9_CSV = "qm9/geom_qm9_test_matched_qm9_dft_geometry.csv"


def test_qm9_csv_geometry_mapped_onto_smiles(shared_data):
    path = shared_data / QM9_CSV
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    errors, stats = [], {}
    recs = list(iter_molecules(path, errors=errors, stats=stats))
    assert len(recs) + len(errors) == len(rows)
    assert len(recs) >= 900  # strained rings are matched as subgraphs
    for rec in recs:
        assert canonical_smiles(rec.mol, stereo=False) == canonical_smiles(rec.smiles, stereo=False)
        lengths = bond_lengths(rec.mol)
        assert lengths.min() > 0.9 and lengths.max() < 1.9, rec.smiles
        assert rec.mol.GetNumAtoms() == len(json.loads(rows[int(rec.source.rsplit(":", 1)[1]) - 2]["xyz_ang"]))
    # stereo comes from the geometry: compare with RDKit's own bond perception on the xyz (independent path)
    from rdkit.Chem import rdDetermineBonds
    checked = 0
    for row, rec in zip(rows, recs):
        xyz = json.loads(row["xyz_ang"])
        block = f"{len(xyz)}\n\n" + "".join(f"{e} {x} {y} {z}\n" for e, (x, y, z) in
                                              zip(eval(row["elements"]), xyz))
        ref = Chem.MolFromXYZBlock(block)
        try:
            rdDetermineBonds.DetermineBonds(ref, charge=0)
        except Exception:
            continue
        Chem.AssignStereochemistryFrom3D(ref)
        if canonical_smiles(ref, stereo=False) != canonical_smiles(rec.mol, stereo=False):
            continue
        assert canonical_smiles(ref, stereo=True) == canonical_smiles(rec.mol, stereo=True)
        checked += 1
        if checked == 100:
            break
    assert checked == 100


@pytest.mark.skipif(importlib.util.find_spec("qm9pack") is None, reason="qm9pack not installed")
def test_qm9pack_source():
    errors = []
    recs = list(itertools.islice(iter_molecules("qm9pack", errors=errors), 300))
    assert len(recs) == 300 and not errors
    assert recs[0].smiles == "C" and recs[0].mol.GetNumAtoms() == 5
    for rec in recs:
        assert canonical_smiles(rec.mol, stereo=False) == canonical_smiles(rec.smiles, stereo=False)
        assert bond_lengths(rec.mol).max() < 1.9


def test_map_geometry_rejects_wrong_graph():
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    from rdkit.Chem import AllChem
    AllChem.EmbedMolecule(mol, randomSeed=7)
    elements = [a.GetSymbol() for a in mol.GetAtoms()]
    xyz = mol.GetConformer().GetPositions()
    perm = np.random.default_rng(1).permutation(len(elements))
    got = map_geometry_to_smiles("OCC", [elements[i] for i in perm], xyz[perm])
    np.testing.assert_allclose(sorted_distances(got.GetConformer().GetPositions()), sorted_distances(xyz))
    with pytest.raises(InputError, match="does not match"):
        map_geometry_to_smiles("COC", elements, xyz)
