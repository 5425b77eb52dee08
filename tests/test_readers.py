"""confgen.data.readers: pickles, SDF, GEOM rdkit_folder, SMILES files, records and format detection."""

import csv
import gzip
import json
import pickle
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from rdkit import Chem

from confgen.chem.smiles import canonical_smiles
from confgen.data.readers import (
    MolRecord,
    detect_format,
    iter_json_object,
    iter_molecules,
)
from confgen.errors import InputError

from geom_fixture import build_rdkit_folder, load_train10
from mol_helpers import bond_lengths, sorted_distances

TRAIN10_PKL = "geom_drugs_train10/true_conformers_train_first_10smis.pkl"
TRAIN10_SDF = "geom_drugs_train10/true_conformers_train_first_10smis.sdf"


def _majority_graph_counts(data: dict) -> dict:
    """Per key: number of conformers whose stereo-free graph is the most common one (independent of readers)."""
    out = {}
    for key, mols in data.items():
        graphs = Counter(Chem.MolToSmiles(Chem.RemoveHs(m), isomericSmiles=False) for m in mols)
        out[key] = graphs.most_common(1)[0][1]
    return out


@pytest.fixture(scope="module")
def train10(shared_data):
    return load_train10(shared_data)


def test_torsional_diffusion_pickle(shared_data, train10):
    stats = {}
    recs = list(iter_molecules(shared_data / TRAIN10_PKL, stats=stats))
    assert [r.smiles for r in recs] == list(train10)
    expected = _majority_graph_counts(train10)
    assert [r.num_confs for r in recs] == [expected[k] for k in train10]
    assert stats["dropped_conformers"] == sum(len(v) for v in train10.values()) - sum(expected.values())
    for rec in recs:
        first = train10[rec.smiles][0]
        assert rec.mol.GetNumAtoms() == first.GetNumAtoms()
        assert all(a.GetNumImplicitHs() == 0 for a in rec.mol.GetAtoms())
        np.testing.assert_allclose(rec.mol.GetConformer(0).GetPositions(), first.GetConformer().GetPositions())
        assert rec.weights is None
    # max_confs keeps the first ones
    recs3 = list(iter_molecules(shared_data / TRAIN10_PKL, max_confs=3))
    assert all(r.num_confs == min(3, n) for r, n in zip(recs3, [r.num_confs for r in recs]))


def test_sdf_grouped_by_graph_matches_pickle(shared_data, train10):
    recs = list(iter_molecules(shared_data / TRAIN10_SDF))
    pkl = list(iter_molecules(shared_data / TRAIN10_PKL))
    assert [r.smiles for r in recs] == [r.smiles for r in pkl]
    assert [r.num_confs for r in recs] == [r.num_confs for r in pkl]
    for a, b in zip(recs, pkl):
        np.testing.assert_allclose(a.mol.GetConformer(1).GetPositions(), b.mol.GetConformer(1).GetPositions(),
                                   atol=1e-4)
        assert canonical_smiles(a.mol, stereo=True) == canonical_smiles(b.mol, stereo=True)
        assert a.source.startswith(str(shared_data / TRAIN10_SDF) + ":record ")


def test_tora3d_reference_sdfs(shared_data):
    root = shared_data / "geom_drugs_tora3d7"
    with open(root / "index.csv") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        recs = list(iter_molecules(root / "molecules" / row["dir"] / row["true_file"]))
        assert len(recs) == 1
        assert recs[0].num_confs == int(row["n_true"])
        assert canonical_smiles(recs[0].mol, stereo=False) == canonical_smiles(row["smiles"], stereo=False)
    mol06 = next(r for r in rows if r["dir"] == "mol06")
    rec = next(iter_molecules(root / "molecules/mol06" / mol06["true_file"]))
    assert canonical_smiles(rec.mol, stereo=True) == canonical_smiles(mol06["smiles"], stereo=True)


def test_sdf_with_renumbered_conformer_and_two_molecules(tmp_path, shared_data):
    root = shared_data / "geom_drugs_tora3d7/molecules"
    ref = [m for m in Chem.SDMolSupplier(str(next((root / "mol06").glob("t_*.sdf"))), removeHs=False)]
    other = [m for m in Chem.SDMolSupplier(str(next((root / "mol00").glob("t_*.sdf"))), removeHs=False)]
    perm = list(np.random.default_rng(0).permutation(ref[1].GetNumAtoms()))
    shuffled = Chem.RenumberAtoms(ref[1], [int(i) for i in perm])
    path = tmp_path / "mixed.sdf.gz"
    with gzip.open(path, "wt") as fh:
        w = Chem.SDWriter(fh)
        for m in [ref[0], shuffled, ref[2]] + other:
            w.write(m)
        w.close()
    recs = list(iter_molecules(path))
    assert [r.num_confs for r in recs] == [3, len(other)]
    # the renumbered record is mapped back onto the first record's atom order: same geometry up to symmetry
    pos = recs[0].mol.GetConformer(1).GetPositions()
    np.testing.assert_allclose(sorted_distances(pos), sorted_distances(ref[1].GetConformer().GetPositions()),
                               atol=1e-3)
    assert np.all((bond_lengths(recs[0].mol, 1) > 0.9) & (bond_lengths(recs[0].mol, 1) < 1.8))


def test_rdkit_folder_fixture_and_filters(tmp_path, shared_data, train10):
    root = build_rdkit_folder(tmp_path / "rdkit_folder", shared_data)
    assert detect_format(root) == "rdkit_folder"
    expected = _majority_graph_counts(train10)
    recs = list(iter_molecules(root))
    keys = [k.replace("_", "/") for k in train10]
    assert [r.smiles for r in recs] == keys
    assert [r.num_confs for r in recs] == [expected[k] for k in train10]
    for r in recs:
        w = np.asarray(r.weights)
        assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) <= 1e-12)

    # max conformers: the K highest Boltzmann weights, read straight from the fixture's pickles
    recs5 = list(iter_molecules(root, max_confs=5))
    summary = json.loads((root / "summary_drugs.json").read_text())
    for rec in recs5:
        with open(root / summary[rec.smiles]["pickle_path"], "rb") as fh:
            confs = pickle.load(fh)["conformers"]
        best = max(confs, key=lambda c: c["boltzmannweight"])
        assert rec.num_confs == 5
        np.testing.assert_allclose(rec.mol.GetConformer(0).GetPositions(),
                                   best["rd_mol"].GetConformer().GetPositions())
        top5 = sorted(c["boltzmannweight"] for c in confs)[-5:]
        w = np.asarray(rec.weights)
        np.testing.assert_allclose(w, np.array(top5[::-1]) / sum(top5))

    # split CSV: keep listed molecules only (one of them written without stereo marks: canonical match)
    split = tmp_path / "split.csv"
    chosen = [keys[1], keys[3], Chem.MolToSmiles(Chem.MolFromSmiles(keys[0]), isomericSmiles=False)]
    split.write_text("smiles,n_conformers\n" + "".join(f"{s},1\n" for s in chosen))
    stats = {}
    got = [r.smiles for r in iter_molecules(root, split_csv=split, stats=stats)]
    assert got == [keys[0], keys[1], keys[3]]
    assert stats["filtered_split"] == 7

    # heavy-atom range, counted independently
    heavy = {k: Chem.MolFromSmiles(k).GetNumHeavyAtoms() for k in keys}
    lo, hi = 20, 26
    got = [r.smiles for r in iter_molecules(root, min_heavy_atoms=lo, max_heavy_atoms=hi)]
    assert got == [k for k in keys if lo <= heavy[k] <= hi] and 0 < len(got) < len(keys)


def test_rdkit_folder_missing_pickle_and_hostile_pickle(tmp_path, shared_data):
    root = build_rdkit_folder(tmp_path / "rf", shared_data, max_mols=4)
    summary = json.loads((root / "summary_drugs.json").read_text())
    keys = list(summary)
    (root / summary[keys[1]]["pickle_path"]).unlink()

    class Hostile:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (root / summary[keys[2]]["pickle_path"]).write_bytes(pickle.dumps({"conformers": [Hostile()]}))
    errors = []
    recs = list(iter_molecules(root, errors=errors))
    assert [r.smiles for r in recs] == [keys[0], keys[3]]
    assert len(errors) == 2
    assert "not found" in str(errors[0]) and keys[1] in str(errors[0])
    assert "unsafe pickle" in str(errors[1]) and summary[keys[2]]["pickle_path"].split("/")[-1] in str(errors[1])
    assert not (tmp_path / "pwned").exists()


def test_smiles_files(tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text("# comment\nCCO ethanol\n\nC1CC broken\nc1ccccc1\n[H][H] hydrogen\n")
    errors = []
    recs = list(iter_molecules(smi, errors=errors))
    assert [(r.smiles, r.name) for r in recs] == [("CCO", "ethanol"), ("c1ccccc1", "c1ccccc1")]
    assert recs[0].mol.GetNumAtoms() == 9 and recs[0].num_confs == 0
    assert recs[0].source == f"{smi}:2"
    assert [str(e) for e in errors] == [f"{smi}:4 'C1CC': invalid SMILES",
                                        f"{smi}:6 '[H][H]': molecule has no heavy atoms"]
    with pytest.raises(InputError, match="invalid SMILES"):
        list(iter_molecules(smi))
    c = tmp_path / "mols.csv"
    c.write_text("name,smiles\nasp,CC(=O)Oc1ccccc1C(=O)O\n")
    recs = list(iter_molecules(c))
    assert [(r.smiles, r.name, r.source) for r in recs] == [("CC(=O)Oc1ccccc1C(=O)O", "asp", f"{c}:2")]


@pytest.mark.parametrize("name,content,msg", [
    ("missing.sdf", None, "no such file"),
    ("data.xyz", b"3\n\n", "unknown format"),
    ("empty.sdf", b"", "empty file"),
    ("empty.smi", b"", "empty file"),
    ("empty.pkl", b"", "empty file"),
    ("garbage.pkl", b"not a pickle at all", "corrupted"),
    ("list.pkl", pickle.dumps([1, 2, 3]), "unknown pickle layout"),
    ("bad.csv", b"a,b\n1,2\n", "unknown CSV layout"),
    ("notgz.sdf.gz", b"plain text", "cannot read"),
])
def test_bad_inputs_name_the_input(tmp_path, name, content, msg):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    errors = []
    assert list(iter_molecules(path, errors=errors)) == []
    assert len(errors) == 1 and isinstance(errors[0], InputError)
    assert str(path) in str(errors[0]) and msg in str(errors[0])
    with pytest.raises(InputError, match=msg):
        list(iter_molecules(path))


def test_corrupted_sdf_record_skipped(tmp_path, shared_data):
    src = next((shared_data / "geom_drugs_tora3d7/molecules/mol00").glob("t_*.sdf")).read_text()
    blocks = src.split("$$$$\n")
    broken = blocks[1].replace(" C ", " Xx ", 1)
    path = tmp_path / "broken.sdf"
    path.write_text("$$$$\n".join([blocks[0], broken] + blocks[2:]))
    errors = []
    recs = list(iter_molecules(path, errors=errors))
    assert [r.num_confs for r in recs] == [2]
    assert len(errors) == 1 and f"{path}:record 2" in str(errors[0])


def test_iter_json_object_streams_entries(tmp_path):
    p = tmp_path / "s.json"
    obj = {"C/C=C/C": {"pickle_path": "drugs/C_C=C_C.pickle", "x": [1, {"y": None}]}, "O": {}}
    p.write_text(json.dumps(obj, indent=1))
    assert dict(iter_json_object(p)) == obj
    (tmp_path / "t.json").write_text('{"a": 1,')
    from confgen.errors import ConfgenError
    with pytest.raises(ConfgenError, match="t.json: invalid JSON"):
        list(iter_json_object(tmp_path / "t.json"))


def test_molrecord_fields():
    rec = MolRecord(smiles="C", mol=Chem.AddHs(Chem.MolFromSmiles("C")))
    assert rec.weights is None and rec.num_confs == 0


def test_stereo_keep_and_split_on_geom_ensemble_with_e_and_z(shared_data):
    """mol02's GEOM ensemble holds both amidine isomers (E and Z, read from the 3D geometry)."""
    path = next((shared_data / "geom_drugs_tora3d7/molecules/mol02").glob("t_*.sdf"))
    per_conf = Counter()
    for m in Chem.SDMolSupplier(str(path), removeHs=False):
        Chem.AssignStereochemistryFrom3D(m)
        per_conf[Chem.MolToSmiles(Chem.RemoveHs(m))] += 1
    assert len(per_conf) == 2
    kept = list(iter_molecules(path))
    assert len(kept) == 1 and kept[0].num_confs == sum(per_conf.values())
    split = list(iter_molecules(path, stereo="split"))
    got = Counter({canonical_smiles(r.mol, stereo=True): r.num_confs for r in split})
    assert got == per_conf
    assert split[1].source.endswith("(stereoisomer 2)")


def test_readers_evaluation_and_io_import_no_torch():
    """confgen.data's names load on first use: reading molecules, evaluating and the SDF/input code need no torch."""
    code = ("import sys\n"
            "import confgen.data.readers, confgen.evaluation, confgen.io\n"
            "loaded = [m for m in ('torch', 'torch_geometric') if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "from rdkit import Chem\n"
            "from confgen.data import ATOM_FEATURE_DIM, featurize_mol  # loads the featuriser on first use\n"
            "data = featurize_mol(Chem.AddHs(Chem.MolFromSmiles('CCO')))\n"
            "assert tuple(data.x.shape) == (9, ATOM_FEATURE_DIM) and 'torch_geometric' in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
