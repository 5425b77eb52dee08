"""Input readers (.smi/.csv/.sdf) with bad records, and the atomic SDF writer."""

from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.errors import ConfgenError, InputError
from confgen.io import (
    PROP_CONF_ID,
    PROP_INDEX,
    PROP_MMFF_ENERGY,
    PROP_SMILES,
    AtomicSDFWriter,
    read_inputs,
    read_sdf_conformers,
)
from confgen.chem.stereo import check_stereo, stereo_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOO_LARGE = "C" * 201


def test_smi_names_comments_header_and_bad_lines(tmp_path):
    f = tmp_path / "in.smi"
    f.write_text(
        "smiles name\n"
        "# a comment line\n"
        "\n"
        "C[C@H](N)O  alaninol R  # trailing comment\n"
        "C1CC not_a_smiles\n"
        "CC#N acetonitrile\n"
        "[Na+].[Cl-] salt\n"
        f"{TOO_LARGE} big\n"
        "O\n"
    )
    errors = []
    recs = read_inputs(f, errors=errors)
    assert [(r.index, r.name, r.smiles, r.source) for r in recs] == [
        (0, "alaninol R", "C[C@H](N)O", "in.smi:4"),
        (2, "acetonitrile", "CC#N", "in.smi:6"),
        (5, "mol5", "O", "in.smi:9"),
    ]
    msgs = [str(e) for e in errors]
    assert msgs[0].startswith("in.smi:5 'C1CC': invalid SMILES")
    assert msgs[1].startswith("in.smi:7 '[Na+].[Cl-]': no organic fragment")
    assert msgs[2].startswith(f"in.smi:8 '{TOO_LARGE}': molecule has 201 heavy atoms")
    assert all("\n" not in m for m in msgs)
    # explicit hydrogens, stereo kept, no conformers
    mol = recs[0].mol
    assert mol.GetNumAtoms() == 11 and mol.GetNumConformers() == 0
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == Chem.MolToSmiles(Chem.MolFromSmiles("C[C@H](N)O"))
    with pytest.raises(InputError, match="in.smi:5"):
        read_inputs(f)  # errors=None: the first bad record raises


def test_csv_columns_counts_and_bad_rows(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("Name,SMILES,n_conformers\nethanol,CCO,3\nbad,C1CC,2\nwat,O,x\n,c1ccccc1,\nneg,CC,-1\n")
    errors = []
    recs = read_inputs(f, errors=errors)
    assert [(r.index, r.name, r.smiles, r.num_confs, r.source) for r in recs] == [
        (0, "ethanol", "CCO", 3, "in.csv:2"), (3, "mol3", "c1ccccc1", None, "in.csv:5")]
    assert [e.source for e in errors] == ["in.csv:3", "in.csv:4", "in.csv:6"]
    assert "not a number" in str(errors[1]) and "negative" in str(errors[2])
    g = tmp_path / "nosmiles.csv"
    g.write_text("name,n\nx,1\n")
    with pytest.raises(ConfgenError, match="no 'smiles' column"):
        read_inputs(g)


def test_sdf_records_keep_3d_stereo_and_bad_record_is_reported(tmp_path):
    good = []
    for smi, name in (("C[C@@H](N)O", "s_alaninol"), ("C/C=C\\C(=O)O", "isocrotonic")):
        m = Chem.AddHs(Chem.MolFromSmiles(smi))
        AllChem.EmbedMolecule(m, randomSeed=5)
        m.SetProp("_Name", name)
        good.append(Chem.MolToMolBlock(m))
    broken = "broken\n  junk\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\nnot a mol block\nM  END\n"
    f = tmp_path / "in.sdf"
    f.write_text("$$$$\n".join([good[0], broken, good[1]]) + "$$$$\n")
    errors = []
    recs = read_inputs(f, errors=errors)
    assert [(r.index, r.name, r.source) for r in recs] == [(0, "s_alaninol", "in.sdf:record 1"),
                                                          (2, "isocrotonic", "in.sdf:record 3")]
    assert [e.source for e in errors] == ["in.sdf:record 2"]
    assert recs[0].smiles == Chem.MolToSmiles(Chem.MolFromSmiles("C[C@@H](N)O"))
    assert recs[1].smiles == Chem.MolToSmiles(Chem.MolFromSmiles("C/C=C\\C(=O)O"))
    assert stereo_spec(recs[0].mol).num_centers == 1 and stereo_spec(recs[1].mol).num_bonds == 1


def test_empty_and_unknown_inputs(tmp_path):
    for name, text in (("e.smi", "# only a comment\n\n"), ("e.csv", "smiles,name\n"), ("e.sdf", "")):
        f = tmp_path / name
        f.write_text(text)
        with pytest.raises(ConfgenError, match="no molecules"):
            read_inputs(f, errors=[])
    with pytest.raises(ConfgenError, match="unknown input format"):
        (tmp_path / "x.pdb").write_text("x")
        read_inputs(tmp_path / "x.pdb")
    with pytest.raises(ConfgenError, match="does not exist"):
        read_inputs(tmp_path / "missing.smi")


def test_examples_are_readable_and_stereo_rich():
    recs = {f: read_inputs(EXAMPLES / f) for f in ("molecules.smi", "molecules.csv", "molecules.sdf")}
    assert len(recs["molecules.smi"]) >= 10
    specs = [stereo_spec(r.mol) for r in recs["molecules.smi"]]
    assert sum(s.num_centers > 0 for s in specs) >= 4 and sum(s.num_bonds > 0 for s in specs) >= 3
    assert all(r.num_confs for r in recs["molecules.csv"])
    # the SDF records carry the same stereo as the same molecules in the .smi file
    by_name = {r.name: r for r in recs["molecules.smi"]}
    for r in recs["molecules.sdf"]:
        assert Chem.MolToSmiles(Chem.MolFromSmiles(by_name[r.name].smiles)) == r.smiles


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


@pytest.mark.parametrize("ion", ["[Na+]", "[K+]", "[Li+]", "[Mg+2]", "[Ca+2]", "[Zn+2]", "[Cl-]", "[Br-]", "[I-]",
                                 "[F-]", "[NH4+]", "O"])
def test_counter_ions_and_solvent_are_removed_never_an_error(ion):
    from confgen.io import PROP_REMOVED_FRAGMENTS, mol_from_smiles

    mol = mol_from_smiles(f"{ion}.CC(=O)[O-]", source="t")
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == "CC(=O)[O-]"
    assert mol.GetProp(PROP_REMOVED_FRAGMENTS) == Chem.MolToSmiles(Chem.MolFromSmiles(ion))


def test_largest_organic_fragment_counts_heavy_atoms_also_with_explicit_hydrogens():
    from confgen.io import keep_largest_fragment

    for smiles in ("C1CCCCC1.OC(=O)c1ccccc1", "OC(=O)c1ccccc1.C1CCCCC1"):
        for mol in (Chem.MolFromSmiles(smiles), Chem.AddHs(Chem.MolFromSmiles(smiles))):
            kept, removed = keep_largest_fragment(mol)
            assert Chem.MolToSmiles(Chem.RemoveHs(kept)) == "O=C(O)c1ccccc1" and removed == ["C1CCCCC1"]


def test_fragments_all_keeps_the_salt_whole():
    from confgen.io import PROP_REMOVED_FRAGMENTS, mol_from_smiles

    mol = mol_from_smiles("CC(=O)[O-].[NH4+]", source="t", fragments="all")
    assert len(Chem.GetMolFrags(mol)) == 2 and not mol.HasProp(PROP_REMOVED_FRAGMENTS)


def test_resolve_stereo_policies():
    from confgen.io import (PROP_ISOMERIC_SMILES, PROP_STEREO_POLICY, PROP_STEREOISOMER, mol_from_smiles,
                            resolve_stereo)

    mol = mol_from_smiles("CC=CC(O)C", source="t")  # one centre and one double bond unspecified: 4 isomers
    (one,), note = resolve_stereo(mol, "one", source="in.smi:3", label="CC=CC(O)C")
    assert note.startswith("in.smi:3 'CC=CC(O)C': unspecified stereo") and one.GetProp(PROP_STEREO_POLICY) == "one"
    assert "@" in one.GetProp(PROP_ISOMERIC_SMILES) and "/" in one.GetProp(PROP_ISOMERIC_SMILES)
    isos, note = resolve_stereo(mol, "enumerate")
    assert len({m.GetProp(PROP_ISOMERIC_SMILES) for m in isos}) == 4
    assert [m.GetProp(PROP_STEREOISOMER) for m in isos] == ["1/4", "2/4", "3/4", "4/4"]
    isos, note = resolve_stereo(mol, "enumerate", max_isomers=3)
    assert len(isos) == 3 and "limit" in note
    with pytest.raises(InputError, match="unspecified stereo"):
        resolve_stereo(mol, "refuse", source="x")
    spec = mol_from_smiles("C/C=C/[C@H](C)O", source="t")
    (same,), note = resolve_stereo(spec, "refuse")
    assert note is None and same.GetProp(PROP_STEREO_POLICY) == "specified"
