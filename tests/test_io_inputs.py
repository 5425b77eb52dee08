"""confgen.io.inputs: input readers (.smi/.csv/.sdf) with bad records, fragments and stereo policies."""

from pathlib import Path

import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.chem.stereo import stereo_spec
from confgen.errors import ConfgenError, InputError
from confgen.io import input_format, iter_inputs, read_inputs

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


@pytest.mark.parametrize("ion", ["[Na+]", "[K+]", "[Li+]", "[Mg+2]", "[Ca+2]", "[Zn+2]", "[Cl-]", "[Br-]", "[I-]",
                                 "[F-]", "[NH4+]", "O"])
def test_counter_ions_and_solvent_are_removed_never_an_error(ion):
    from confgen.io import PROP_REMOVED_FRAGMENTS, mol_from_smiles

    mol = mol_from_smiles(f"{ion}.CC(=O)[O-]", source="t")
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == "CC(=O)[O-]"
    assert mol.GetProp(PROP_REMOVED_FRAGMENTS) == Chem.MolToSmiles(Chem.MolFromSmiles(ion))


def test_largest_organic_fragment_counts_heavy_atoms_also_with_explicit_hydrogens():
    from confgen.chem.molprep import keep_largest_fragment

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


def test_invertible_nitrogens_are_not_stereocentres_of_the_policy():
    from confgen.io import PROP_ISOMERIC_SMILES, PROP_STEREO_POLICY, mol_from_smiles, resolve_stereo

    # an aziridine nitrogen inverts: with its carbon specified, nothing is unspecified (--stereo refuse passes)
    (same,), note = resolve_stereo(mol_from_smiles("C[C@H]1CN1CC(N)=O", source="t"), "refuse")
    assert note is None and same.GetProp(PROP_STEREO_POLICY) == "specified"
    # only the carbon is enumerated; the nitrogens stay untagged in every isomer
    isos, note = resolve_stereo(mol_from_smiles("CC1CN1C", source="t"), "enumerate")
    assert len(isos) == 2 and all("N@" not in m.GetProp(PROP_ISOMERIC_SMILES) for m in isos)
    assert all(a.GetChiralTag() == Chem.ChiralType.CHI_UNSPECIFIED for m in isos for a in m.GetAtoms()
               if a.GetAtomicNum() == 7)
    # a nitrogen the input specifies is kept; a quaternary ammonium centre is a real stereocentre
    (kept,), _ = resolve_stereo(mol_from_smiles("C[C@H]1C[N@]1C", source="t"), "one")
    assert "N@" in kept.GetProp(PROP_ISOMERIC_SMILES)
    isos, _ = resolve_stereo(mol_from_smiles("C[N+](CC)(CCC)Cc1ccccc1", source="t"), "enumerate")
    assert len(isos) == 2 and all("N@" in m.GetProp(PROP_ISOMERIC_SMILES) for m in isos)

def test_one_smiles_line_parser_and_one_suffix_list(tmp_path):
    """confgen.io's input reader and confgen.data.readers read SMILES files alike (names, comments, header)."""
    from confgen.data.readers import SDF_SUFFIXES, SMILES_SUFFIXES, iter_molecules

    text = "# a comment\nsmiles name\nCC#N acetonitrile # nitrile\nOCC  ethanol  dry\n"
    for suffix in SMILES_SUFFIXES:
        path = tmp_path / f"mols{suffix}"
        path.write_text(text)
        assert input_format(path) == "smi"
        got = [(r.smiles, r.name) for r in read_inputs(path)]
        assert got == [("CC#N", "acetonitrile"), ("OCC", "ethanol dry")]
        assert [(r.smiles, r.name) for r in iter_molecules(path)] == got
    assert all(input_format(f"x{s}") == "sdf" for s in SDF_SUFFIXES)


def test_gzipped_sdf_input(tmp_path):
    import gzip

    mol = Chem.AddHs(Chem.MolFromSmiles("C[C@H](N)O"))
    AllChem.EmbedMolecule(mol, randomSeed=3)
    mol.SetProp("_Name", "alaninol")
    with gzip.open(tmp_path / "m.sdf.gz", "wt") as fh:
        fh.write(Chem.MolToMolBlock(mol) + "$$$$\n")
    (rec,) = list(iter_inputs(tmp_path / "m.sdf.gz"))
    assert rec.name == "alaninol" and rec.smiles == "C[C@H](N)O" and rec.mol.GetNumConformers() == 0



def test_one_smiles_column_rule_for_csv(tmp_path):
    """confgen.io's CSV input and confgen.data.readers pick the same SMILES column."""
    from confgen.data.readers import iter_molecules

    path = tmp_path / "mols.csv"
    path.write_text("name,geom_smiles,Smiles_note\nethanol,OCC,x\npropane,CCC,y\n")
    got = [(r.smiles, r.name) for r in read_inputs(path)]
    assert got == [("OCC", "ethanol"), ("CCC", "propane")]
    assert [(r.smiles, r.name) for r in iter_molecules(path)] == got
    (tmp_path / "none.csv").write_text("name,formula\nwater,H2O\n")
    with pytest.raises(ConfgenError, match="no 'smiles' column"):
        read_inputs(tmp_path / "none.csv")
