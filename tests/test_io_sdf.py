"""confgen.io.sdf: the atomic SDF writer, its properties and titles."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.chem.stereo import check_stereo, stereo_spec
from confgen.errors import ConfgenError
from confgen.io import PROP_CONF_ID, PROP_INDEX, PROP_MMFF_ENERGY, PROP_SMILES, AtomicSDFWriter, read_sdf_conformers


def _conformers(smiles: str, n: int) -> Chem.Mol:
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMultipleConfs(m, n, randomSeed=9)
    return m


def test_writer_properties_titles_and_round_trip(tmp_path):
    out = tmp_path / "out.sdf"
    a, b = _conformers("C[C@H](N)O", 3), _conformers("CC", 2)
    for k, c in enumerate(b.GetConformers()):
        c.SetDoubleProp(PROP_MMFF_ENERGY, 1.5 + k)
    with AtomicSDFWriter(out) as w:
        w.write_conformers(a, name="first", smiles="C[C@H](N)O", index=0)
        w.write_conformers(b, name="second one", smiles="CC", index=4)
    back = read_sdf_conformers(out)
    assert [m.GetProp("_Name") for m in back] == ["first"] * 3 + ["second one"] * 2
    assert [m.GetIntProp(PROP_CONF_ID) for m in back] == [0, 1, 2, 0, 1]
    assert [m.GetIntProp(PROP_INDEX) for m in back] == [0, 0, 0, 4, 4]
    assert [m.GetProp(PROP_SMILES) for m in back] == ["C[C@H](N)O"] * 3 + ["CC"] * 2
    assert [m.HasProp(PROP_MMFF_ENERGY) for m in back] == [False] * 3 + [True] * 2
    assert back[4].GetDoubleProp(PROP_MMFF_ENERGY) == pytest.approx(2.5)
    assert all(m.GetNumAtoms() == a.GetNumAtoms() for m in back[:3])  # explicit H kept
    np.testing.assert_allclose(back[1].GetConformer().GetPositions(), a.GetConformer(1).GetPositions(), atol=1e-4)
    spec = stereo_spec(a)
    assert check_stereo(spec, np.stack([m.GetConformer().GetPositions() for m in back[:3]])).ok.all()


def test_writer_is_atomic(tmp_path):
    out = tmp_path / "out.sdf"
    out.write_text("previous result\n")
    with pytest.raises(RuntimeError):
        with AtomicSDFWriter(out) as w:
            w.write_conformers(_conformers("CCO", 2), name="x", smiles="CCO", index=0)
            raise RuntimeError("interrupted")
    assert out.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.sdf"]  # no temp file left
    with pytest.raises(ConfgenError, match="does not exist"):
        with AtomicSDFWriter(tmp_path / "nodir" / "out.sdf"):
            pass
