"""Evaluation: symmetry-aware RMSD against RDKit's GetBestRMS, COV/MAT definitions, published COV-R."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rdkit import Chem
from rdkit.Chem import rdMolAlign

from confgen.chem.conformers import heavy_atom_copy
from confgen.chem.rmsd import rmsd_matrix
from confgen.evaluation import cov_mat

from mol_helpers import embed_mol, sdf_ensemble, shuffled


def test_shared_geom_molecules_match_getbestrms_and_published_covr(shared_data):
    """Tora3D predictions vs GEOM references (different atom orders): GetBestRMS and index.csv COV-R."""
    root = shared_data / "geom_drugs_tora3d7"
    with open(root / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        ref = sdf_ensemble(root / "molecules" / row["dir"] / row["true_file"])
        gen = sdf_ensemble(root / "molecules" / row["dir"] / row["pred_file"])
        d = rmsd_matrix(ref, gen)
        assert d.shape == (int(row["n_true"]), int(row["n_pred"]))
        cov = cov_mat(d, [1.25])["cov_r"][0]
        assert round(cov, 3) == pytest.approx(float(row["covr_at_1p25A_from_filename"]), abs=1e-9), row["dir"]
        if row["dir"] in ("mol00", "mol02", "mol06"):  # pairwise GetBestRMS is slow: a sample of pairs
            ref_h, _ = heavy_atom_copy(ref)
            gen_h, _ = heavy_atom_copy(gen)
            for i, j in [(0, 0), (1, 2), (ref.GetNumConformers() - 1, gen.GetNumConformers() - 1)]:
                want = rdMolAlign.GetBestRMS(Chem.Mol(gen_h), ref_h, j, i)
                assert d[i, j] == pytest.approx(want, abs=1e-6)


# ------------------------------------------------------------------------------------------------ CLI
def _write_sdf(path: Path, mols_with_titles) -> None:
    writer = Chem.SDWriter(str(path))
    for mol, title in mols_with_titles:
        for conf in mol.GetConformers():
            m = Chem.Mol(mol)
            m.SetProp("_Name", title)
            writer.write(m, confId=conf.GetId())
    writer.close()


@pytest.fixture(scope="module")
def tora3d7(shared_data):
    root = shared_data / "geom_drugs_tora3d7"
    with open(root / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    refs = [sdf_ensemble(root / "molecules" / r["dir"] / r["true_file"]) for r in rows]
    preds = [sdf_ensemble(root / "molecules" / r["dir"] / r["pred_file"]) for r in rows]
    return rows, refs, preds


def _run_cli(argv, capsys):
    from confgen.cli import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_evaluate_reproduces_published_covr_matching_by_graph(tora3d7, tmp_path, capsys):
    rows, refs, preds = tora3d7
    ref_sdf, gen_sdf = tmp_path / "refs.sdf", tmp_path / "gen.sdf"
    _write_sdf(ref_sdf, [(m, f"ref {i}") for i, m in enumerate(refs)])
    # generated: reversed molecule order, atoms renumbered, misleading titles (the name of another molecule)
    gens = [(shuffled(m, seed=i), f"ref {(i + 1) % len(preds)}") for i, m in enumerate(preds)]
    _write_sdf(gen_sdf, gens[::-1])
    out_json, out_png = tmp_path / "res.json", tmp_path / "cov.png"
    code, out, err = _run_cli(
        ["evaluate", gen_sdf, ref_sdf, "--json", out_json, "--plot", out_png, "--no-progress"], capsys
    )
    assert code == 0, err
    assert "COV-R" in out and "1.25" in out
    res = json.loads(out_json.read_text())
    assert res["n_molecules"] == 7 and res["n_failed"] == 0
    assert [r["delta"] for r in res["results"]] == [0.5, 0.75, 1.25]
    for key in ("cov_r_mean", "cov_r_median", "mat_r_mean", "mat_r_median", "cov_p_mean", "cov_p_median",
                "mat_p_mean", "mat_p_median"):
        assert key in res["results"][0]
    by_title = {m["name"]: m for m in res["per_molecule"]}
    for i, row in enumerate(rows):
        m = by_title[f"ref {i}"]
        assert (m["n_ref"], m["n_gen"]) == (int(row["n_true"]), int(row["n_pred"]))
        assert round(m["cov_r"][2], 3) == pytest.approx(float(row["covr_at_1p25A_from_filename"]), abs=1e-9)
    # anchors.md "Measured here": Tora3D published predictions, COV-R 75.6, MAT-R 0.955, COV-P 67.8, MAT-P 1.090
    r125 = res["results"][2]
    assert (round(100 * r125["cov_r_mean"], 1), round(r125["mat_r_mean"], 3)) == (75.6, 0.955)
    assert (round(100 * r125["cov_p_mean"], 1), round(r125["mat_p_mean"], 3)) == (67.8, 1.090)
    assert out_png.stat().st_size > 1000 and out_png.read_bytes()[:4] == b"\x89PNG"


def test_cli_missing_generated_molecule_counts_as_zero(tora3d7, tmp_path, capsys):
    rows, refs, preds = tora3d7
    ref_sdf, gen_sdf = tmp_path / "refs.sdf", tmp_path / "gen.sdf"
    _write_sdf(ref_sdf, [(m, f"ref {i}") for i, m in enumerate(refs[:3])])
    _write_sdf(gen_sdf, [(m, f"gen {i}") for i, m in enumerate(preds[:2])])  # no prediction for ref 2
    out_json = tmp_path / "res.json"
    code, out, err = _run_cli(["evaluate", gen_sdf, ref_sdf, "--json", out_json, "--delta", "1.25"], capsys)
    assert code == 0
    res = json.loads(out_json.read_text())
    assert res["n_molecules"] == 3 and res["n_missing"] == 1
    assert res["missing"][0]["name"] == "ref 2"
    assert "ref 2" in err and "COV 0" in err
    # published COV-R@1.25: mol00 1.0, mol01 1.0, and 0 for the missing one
    assert res["results"][0]["cov_r_mean"] == pytest.approx(2.0 / 3.0)


def test_cli_bad_inputs_are_reported_by_name(tmp_path, capsys):
    ethanol = embed_mol("CCO", 2, seed=3)
    propanol = embed_mol("CCCO", 2, seed=3)
    benzene = embed_mol("c1ccccc1", 2, seed=3)
    ref_sdf = tmp_path / "refs.sdf"
    _write_sdf(ref_sdf, [(ethanol, "ethanol"), (propanol, "propanol")])
    gen_sdf = tmp_path / "gen.sdf"
    # a molecule without reference, a broken record, then a good one
    _write_sdf(gen_sdf, [(benzene, "benzene")])
    with open(gen_sdf, "a") as fh:
        fh.write("broken\n  RDKit 3D\n\n  2  1  0  0  0  0  0  0  0  0999 V2000\nnot a valid atom line\n$$$$\n")
    _write_sdf(tmp_path / "eth.sdf", [(embed_mol("CCO", 4, seed=8), "gen ethanol")])
    with open(gen_sdf, "a") as fh:
        fh.write((tmp_path / "eth.sdf").read_text())
    out_json = tmp_path / "res.json"
    code, out, err = _run_cli(["evaluate", gen_sdf, ref_sdf, "--json", out_json], capsys)
    assert code == 1  # some input failed, yet the rest was evaluated
    res = json.loads(out_json.read_text())
    reasons = {(f["side"], f["name"]): f["reason"] for f in res["failed"]}
    assert "no reference molecule" in reasons[("generated", "benzene")]
    assert any("could not be parsed" in f["reason"] for f in res["failed"])
    assert "benzene" in err
    eth = next(m for m in res["per_molecule"] if m["name"] == "ethanol")
    assert eth["n_gen"] == 4 and eth["status"] == "ok"
    assert next(m for m in res["per_molecule"] if m["name"] == "propanol")["status"] == "missing"


def test_cli_atom_mismatch_and_unreadable_files(tmp_path, capsys):
    import pickle

    # a reference pickle whose key names ethanol but whose conformers are propanol
    with open(tmp_path / "refs.pkl", "wb") as fh:
        pickle.dump({"CCO": [Chem.Mol(embed_mol("CCCO", 1, seed=s)) for s in (1, 2)]}, fh)
    gen_sdf = tmp_path / "gen.sdf"
    _write_sdf(gen_sdf, [(embed_mol("CCO", 2, seed=4), "ethanol")])
    out_json = tmp_path / "res.json"
    code, out, err = _run_cli(["evaluate", gen_sdf, tmp_path / "refs.pkl", "--json", out_json], capsys)
    res = json.loads(out_json.read_text())
    assert code == 1
    assert [f["reason"] for f in res["failed"]] == ["heavy-atom count differs: reference 4, generated 3"], res["failed"]
    assert res["failed"][0]["side"] == "reference" and res["n_molecules"] == 0

    garbage = tmp_path / "garbage.sdf"
    garbage.write_text("this is not an SDF file\n")
    code, out, err = _run_cli(["evaluate", gen_sdf, garbage], capsys)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "garbage.sdf" in lines[0] and "Traceback" not in err
    code, out, err = _run_cli(["evaluate", gen_sdf, tmp_path / "nope.sdf"], capsys)
    assert code == 1 and "nope.sdf" in err and "Traceback" not in err


def test_index_csv_directory_lists_references_and_predictions(shared_data):
    from confgen.evaluation import load_ensembles

    root = shared_data / "geom_drugs_tora3d7"
    refs, failed, _ = load_ensembles(root, side="reference")
    preds, _, _ = load_ensembles(root, side="generated")
    assert not failed
    # every GEOM conformer is kept, also mol02's amidine conformers whose E/Z differs from the first one
    assert [r.mol.GetNumConformers() for r in refs] == [3, 4, 20, 22, 5, 60, 15]
    assert sum(p.mol.GetNumConformers() for p in preds) == 236
    # the index names its molecules (dir): the results use those names, not the SMILES
    with open(root / "index.csv", newline="") as fh:
        dirs = [row["dir"] for row in csv.DictReader(fh)]
    assert [r.name for r in refs] == dirs
    from confgen.evaluation import evaluate_ensembles

    result = evaluate_ensembles(preds[:2], refs[:2], [1.25], progress=False)
    assert [m["name"] for m in result["per_molecule"]] == dirs[:2]


def test_parallel_workers_give_identical_results(tora3d7):
    from confgen.evaluation import evaluate_ensembles

    _rows, refs, preds = tora3d7
    one = evaluate_ensembles(preds[:3], refs[:3], workers=1)
    two = evaluate_ensembles(preds[:3], refs[:3], workers=2)
    assert one["per_molecule"] == two["per_molecule"] and one["results"] == two["results"]


def test_cli_pickle_and_rdkit_folder_references(shared_data, tmp_path, capsys):
    """The same GEOM conformers as SDF (generated) against the torsional-diffusion pickle and a GEOM
    rdkit_folder built from it: every reference is found again (COV 1, MAT 0), whatever the format."""
    from geom_fixture import build_rdkit_folder

    sdf = shared_data / "geom_drugs_train10" / "true_conformers_train_first_10smis.sdf"
    pkl = shared_data / "geom_drugs_train10" / "true_conformers_train_first_10smis.pkl"
    out_json = tmp_path / "pkl.json"
    code, out, err = _run_cli(["evaluate", sdf, pkl, "--json", out_json, "--workers", "2"], capsys)
    assert code == 0, err
    res = json.loads(out_json.read_text())
    # 503 GEOM conformers; one of them has a broken P-C bond (another graph): dropped by the reader, and said so
    assert res["n_molecules"] == 10 and res["n_ref_conformers"] == 502 and res["n_gen_conformers"] == 502
    assert res["reader_stats"]["references"]["dropped_conformers"] == 1 and "1 reference conformer(s) dropped" in err
    assert all(r["cov_r_mean"] == 1.0 and r["cov_p_mean"] == 1.0 for r in res["results"])
    assert res["results"][0]["mat_r_mean"] < 1e-3  # the SDF holds coordinates to 1e-4 A

    folder = build_rdkit_folder(tmp_path / "rdkit_folder", shared_data, max_mols=3)
    out_json = tmp_path / "folder.json"
    code, out, err = _run_cli(["evaluate", sdf, folder, "--json", out_json], capsys)
    res = json.loads(out_json.read_text())
    assert code == 1  # the 7 generated molecules without a reference are failures, named
    assert res["n_molecules"] == 3 and res["results"][2]["cov_r_mean"] == 1.0
    unmatched = [f for f in res["failed"] if f["side"] == "generated"]
    assert len(unmatched) == 7 and all("no reference" in f["reason"] for f in unmatched)
