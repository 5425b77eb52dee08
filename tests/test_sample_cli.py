"""``confgen sample`` end to end: every input format, counts, properties, stereo, seeds, bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem

from confgen.cli import main
from confgen.io import (
    PROP_CONF_ID,
    PROP_INDEX,
    PROP_ISOMERIC_SMILES,
    PROP_MMFF_ENERGY,
    PROP_REMOVED_FRAGMENTS,
    PROP_SMILES,
    PROP_STEREO_POLICY,
    PROP_WITHIN_BOUNDS,
    read_sdf_conformers,
)
from confgen.chem.stereo import check_stereo, stereo_spec

from sample_models import TINY_OVERRIDES, tiny_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY_ARGS = ["--preset=fast"] + [f"--preset-override={k}={v}" for k, v in TINY_OVERRIDES.items()]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _run(capsys, *args):
    code = main(["sample", *map(str, args), "--model", tiny_checkpoint(), "--workers", "1", "--no-progress",
                 *TINY_ARGS])
    err = capsys.readouterr().err
    return code, err


def _check_stereo(records, same_atom_order=True):
    """Every conformer has its input's stereo (judged against the SMILES it was generated from)."""
    for m in records:
        ref = Chem.AddHs(Chem.MolFromSmiles(m.GetProp(PROP_SMILES)))
        if same_atom_order:  # SMILES inputs: the output keeps the SMILES' atom order
            pos = m.GetConformer().GetPositions()
            assert check_stereo(stereo_spec(ref), pos).ok.all(), m.GetProp("_Name")
        m3 = Chem.Mol(m)
        Chem.AssignStereochemistryFrom3D(m3)
        assert Chem.MolToSmiles(Chem.RemoveHs(m3)) == Chem.MolToSmiles(Chem.RemoveHs(ref))


def test_smi_input(tmp_path, capsys):
    out = tmp_path / "out.sdf"
    code, err = _run(capsys, EXAMPLES / "molecules.smi", "-o", out, "-n", 2, "--seed", 5)
    assert code == 0, err
    recs = read_sdf_conformers(out)
    lines = [ln.split() for ln in (EXAMPLES / "molecules.smi").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert len(recs) == 2 * len(lines)
    assert [r.GetProp("_Name") for r in recs[::2]] == [ln[1] for ln in lines]
    assert [r.GetProp(PROP_SMILES) for r in recs[::2]] == [ln[0] for ln in lines]  # exactly as given
    assert [r.GetIntProp(PROP_INDEX) for r in recs] == [i for i in range(len(lines)) for _ in range(2)]
    assert [r.GetIntProp(PROP_CONF_ID) for r in recs] == [0, 1] * len(lines)
    for r in recs:  # explicit hydrogens, 3D
        assert r.GetNumAtoms() == Chem.AddHs(Chem.MolFromSmiles(r.GetProp(PROP_SMILES))).GetNumAtoms()
        assert r.GetConformer().Is3D() and r.HasProp(PROP_MMFF_ENERGY)  # MMFF94 relaxation is the default
    _check_stereo(recs)
    assert f"wrote {len(recs)} conformers of {len(lines)} molecules" in err
    # same seed, same file; another seed, other coordinates
    again = tmp_path / "again.sdf"
    assert _run(capsys, EXAMPLES / "molecules.smi", "-o", again, "-n", 2, "--seed", 5)[0] == 0
    assert again.read_text() == out.read_text()
    other = tmp_path / "other.sdf"
    assert _run(capsys, EXAMPLES / "molecules.smi", "-o", other, "-n", 2, "--seed", 6)[0] == 0
    assert other.read_text() != out.read_text()


def test_csv_with_factor_and_sdf_input_without_relax(tmp_path, capsys):
    out = tmp_path / "csv.sdf"
    code, err = _run(capsys, EXAMPLES / "molecules.csv", "-o", out, "--num-confs-factor", 2, "--seed", 1)
    assert code == 0, err
    recs = read_sdf_conformers(out)
    counts = {}
    for r in recs:
        counts[r.GetProp("_Name")] = counts.get(r.GetProp("_Name"), 0) + 1
    assert counts == {"naproxen_S": 8, "sertraline_1S4S": 12, "entacapone_E": 10, "caffeine": 4}
    _check_stereo(recs)

    out = tmp_path / "sdf.sdf"
    code, err = _run(capsys, EXAMPLES / "molecules.sdf", "-o", out, "-n", 2, "--seed", 1, "--relax", "none")
    assert code == 0, err
    recs = read_sdf_conformers(out)
    assert [r.GetProp("_Name") for r in recs] == ["paroxetine_3S4R"] * 2 + ["oseltamivir_3R4R5S"] * 2 + [
        "tamoxifen_Z"] * 2
    assert not any(r.HasProp(PROP_MMFF_ENERGY) for r in recs)  # the score model's conformers as sampled
    inputs = [m for m in Chem.SDMolSupplier(str(EXAMPLES / "molecules.sdf"), removeHs=False)]
    assert [r.GetProp(PROP_SMILES) for r in recs[::2]] == [Chem.MolToSmiles(Chem.RemoveHs(m)) for m in inputs]
    _check_stereo(recs, same_atom_order=False)


def test_bad_input_is_reported_and_the_rest_written(tmp_path):
    """Run as users do (a subprocess): one error line per bad record, no traceback, exit status 1."""
    bad = tmp_path / "bad.smi"
    bad.write_text("C[C@H](N)O good1\nC1CC broken\nC[Se]C selenide\n" + "C" * 201 + " huge\nCC/C=C/C good2\n")
    out = tmp_path / "out.sdf"
    cmd = [sys.executable, "-m", "confgen", "sample", str(bad), "-o", str(out), "-n", "2", "--seed", "0",
           "--model", tiny_checkpoint(), "--workers", "1", "--no-progress", *TINY_ARGS]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 3 and "Traceback" not in proc.stderr
    assert "bad.smi:2 'C1CC': invalid SMILES" in errors[0]
    assert "bad.smi:3 'C[Se]C': unsupported element Se" in errors[1]
    assert "bad.smi:4" in errors[2] and "201 heavy atoms" in errors[2]
    recs = read_sdf_conformers(out)
    assert [r.GetProp("_Name") for r in recs] == ["good1", "good1", "good2", "good2"]
    assert [r.GetIntProp(PROP_INDEX) for r in recs] == [0, 0, 4, 4]


def test_empty_input_missing_model_and_bad_flags(tmp_path, capsys):
    empty = tmp_path / "empty.smi"
    empty.write_text("# nothing here\n")
    out = tmp_path / "out.sdf"
    code, err = _run(capsys, empty, "-o", out)
    assert code == 1 and "no molecules" in err and err.count("\n") == 1
    assert not out.exists()
    code = main(["sample", str(EXAMPLES / "molecules.smi"), "-o", str(out), "--model", str(tmp_path / "no.pt"),
                 "--no-progress"])
    assert code == 1 and "does not exist" in capsys.readouterr().err and not out.exists()
    code, err = _run(capsys, EXAMPLES / "molecules.smi", "-o", out, "--preset-override", "steps=3")
    assert code == 1 and "unknown sampler parameter" in err and not out.exists()
    code, err = _run(capsys, EXAMPLES / "molecules.smi", "-o", out, "--num-confs-factor", 2)
    assert code == 1 and "needs a CSV count column" in err and err.count("\n") == 1 and not out.exists()


def test_a_directory_as_input_is_named_as_such(tmp_path, capsys):
    out = tmp_path / "x.sdf"
    code, err = _run(capsys, tmp_path, "-o", out)
    assert code == 1 and "is a directory" in err and "does not exist" not in err and not out.exists()


TORA = Path(__file__).resolve().parents[2] / "shared" / "data" / "geom_drugs_tora3d7" / "index.csv"


@pytest.mark.skipif(not TORA.exists(), reason="shared reference data not available")
def test_csv_count_column_n_true_and_no_empty_output(tmp_path, capsys):
    """The shared index.csv names its count column n_true: --num-confs-factor reads it."""
    import csv

    f = tmp_path / "index.csv"
    f.write_text("".join(TORA.read_text().splitlines(keepends=True)[:3]))  # the header and two molecules
    rows = list(csv.DictReader(f.open()))
    out = tmp_path / "out.sdf"
    code, err = _run(capsys, f, "-o", out, "--num-confs-factor", 0.5, "--relax", "none", "--seed", 1)
    assert code == 0, err
    recs = read_sdf_conformers(out)
    assert [r.GetProp(PROP_SMILES) for r in recs] == [r["smiles"] for r in rows
                                                      for _ in range(round(0.5 * int(r["n_true"])))]
    # a count column named otherwise: --count-column; a wrong name is one error and no output
    g = tmp_path / "other.csv"
    g.write_text("smiles,copies\nCCO,3\n")
    code, err = _run(capsys, g, "-o", out.with_name("g.sdf"), "--count-column", "copies", "--relax", "none")
    assert code == 0 and len(read_sdf_conformers(out.with_name("g.sdf"))) == 3
    code, err = _run(capsys, g, "-o", out.with_name("h.sdf"), "--count-column", "n_true")
    assert code == 1 and "no count column 'n_true'" in err and not out.with_name("h.sdf").exists()
    # every molecule failing leaves no output file at all (not a 0-byte one), like an empty input does
    bad = tmp_path / "bad.smi"
    bad.write_text("C1CC broken\nC[Se]C selenide\n")
    code, err = _run(capsys, bad, "-o", out.with_name("bad.sdf"))
    assert code == 1 and not out.with_name("bad.sdf").exists() and "was not written" in err


def _fragments(mol):
    return [list(f) for f in Chem.GetMolFrags(mol)]


def test_salts_keep_the_largest_fragment_and_record_the_rest(tmp_path, capsys):
    f = tmp_path / "salts.smi"
    f.write_text("CC(=O)[O-].[NH4+] ammonium_acetate\nCC(=O)[O-].[Na+] sodium_acetate\n"
                 "[K+].Cl.OC(=O)c1ccccc1 benzoic_acid_mix\n")
    out = tmp_path / "out.sdf"
    code, err = _run(capsys, f, "-o", out, "-n", 2, "--seed", 3)
    assert code == 0, err
    assert "unsupported element" not in err and "fragments removed from 3 input(s)" in err
    recs = read_sdf_conformers(out)
    assert [Chem.MolToSmiles(Chem.RemoveHs(r)) for r in recs[::2]] == ["CC(=O)[O-]", "CC(=O)[O-]",
                                                                          "O=C(O)c1ccccc1"]
    assert [r.GetProp(PROP_REMOVED_FRAGMENTS) for r in recs[::2]] == ["[NH4+]", "[Na+]", "[K+].Cl"]
    assert all(len(_fragments(r)) == 1 for r in recs)


def test_fragments_all_places_a_salt_without_overlap(tmp_path, capsys):
    from confgen.validity import fragment_clearance, geometry_bounds, within_bounds

    f = tmp_path / "salt.smi"
    f.write_text("CC(=O)[O-].[NH4+] ammonium_acetate\n")
    out = tmp_path / "out.sdf"
    code, err = _run(capsys, f, "-o", out, "-n", 4, "--seed", 2, "--fragments", "all", "--relax", "none")
    assert code == 0, err
    recs = read_sdf_conformers(out)
    assert len(recs) == 4
    table = Chem.GetPeriodicTable()
    for r in recs:
        frags = [np.array(x) for x in _fragments(r)]
        assert len(frags) == 2 and not r.HasProp(PROP_REMOVED_FRAGMENTS)
        pos = r.GetConformer().GetPositions()
        radii = np.array([table.GetRvdw(a.GetAtomicNum()) for a in r.GetAtoms()])
        assert fragment_clearance(pos, frags, radii) >= 1.0
        n = [a.GetIdx() for a in r.GetAtoms() if a.GetSymbol() == "N"][0]
        o = [a.GetIdx() for a in r.GetAtoms() if a.GetSymbol() == "O"]
        assert min(np.linalg.norm(pos[n] - pos[k]) for k in o) > 2.4  # the issue saw 1.1-1.9 A
        assert within_bounds(geometry_bounds(r), pos).all() and r.GetIntProp(PROP_WITHIN_BOUNDS) == 1
    # relaxed (MMFF94 pulls the ions into a salt bridge), the fragments still do not overlap
    code, err = _run(capsys, f, "-o", out, "-n", 4, "--seed", 2, "--fragments", "all")
    assert code == 0, err
    for r in read_sdf_conformers(out):
        pos = r.GetConformer().GetPositions()
        n = [a.GetIdx() for a in r.GetAtoms() if a.GetSymbol() == "N"][0]
        assert min(np.linalg.norm(pos[n] - pos[a.GetIdx()]) for a in r.GetAtoms() if a.GetSymbol() == "O") > 2.4
        assert within_bounds(geometry_bounds(r), pos).all() and r.HasProp(PROP_MMFF_ENERGY)


def _cip(mol):
    m = Chem.Mol(mol)
    Chem.AssignStereochemistryFrom3D(m)
    return Chem.MolToSmiles(Chem.RemoveHs(m))


def test_unspecified_stereo_policies(tmp_path, capsys):
    f = tmp_path / "ibu.smi"
    f.write_text("CC(C)Cc1ccc(cc1)C(C)C(=O)O ibuprofen\nC[C@@H](N)C(=O)O alanine\n")
    out = tmp_path / "out.sdf"
    # default "one": one isomer for every conformer, a warning naming the molecule, the policy in the SDF
    code, err = _run(capsys, f, "-o", out, "-n", 6, "--seed", 4, "--relax", "none")
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if "warning" in ln and "stereo" in ln]
    assert len(warnings) == 1 and "ibu.smi:1 'CC(C)Cc1ccc(cc1)C(C)C(=O)O' (ibuprofen)" in warnings[0]
    recs = read_sdf_conformers(out)
    ibu = [r for r in recs if r.GetProp("_Name") == "ibuprofen"]
    assert len(ibu) == 6 and len({_cip(r) for r in ibu}) == 1
    assert {r.GetProp(PROP_STEREO_POLICY) for r in ibu} == {"one"}
    assert {r.GetProp(PROP_ISOMERIC_SMILES) for r in ibu} == {_cip(ibu[0])}
    ala = [r for r in recs if r.GetProp("_Name") == "alanine"]
    assert {r.GetProp(PROP_STEREO_POLICY) for r in ala} == {"specified"} and len({_cip(r) for r in ala}) == 1
    # enumerate: each isomer its own molecule, with its isomeric SMILES
    code, err = _run(capsys, f, "-o", out, "-n", 3, "--seed", 4, "--relax", "none", "--stereo", "enumerate")
    assert code == 0, err
    recs = [r for r in read_sdf_conformers(out) if r.GetProp("_Name").startswith("ibuprofen")]
    assert sorted({r.GetProp("_Name") for r in recs}) == ["ibuprofen_iso1", "ibuprofen_iso2"]
    by_name = {}
    for r in recs:
        by_name.setdefault(r.GetProp("_Name"), set()).add(_cip(r))
        assert _cip(r) == r.GetProp(PROP_ISOMERIC_SMILES)
    assert all(len(v) == 1 for v in by_name.values()) and len(set.union(*by_name.values())) == 2
    # refuse: one error naming the molecule; the others are written
    code, err = _run(capsys, f, "-o", out, "-n", 2, "--seed", 4, "--relax", "none", "--stereo", "refuse")
    assert code == 1 and "ibu.smi:1" in err and "unspecified stereo" in err
    assert [r.GetProp("_Name") for r in read_sdf_conformers(out)] == ["alanine"] * 2


def test_progress_rates_are_reported(tmp_path, capsys):
    """The last line gives the rates of every phase, summed over the worker processes (the bar itself is the
    driver's: molecules written, total fixed by the input's record count)."""
    out = tmp_path / "out.sdf"
    code, err = _run(capsys, EXAMPLES / "molecules.smi", "-o", out, "-n", 3, "--seed", 1)
    assert code == 0, err
    rates = err.strip().splitlines()[-1]
    for phase in ("embedding", "sampling", "relaxing", "writing"):
        assert phase in rates
    assert f"writing {len(read_sdf_conformers(out))} conformers" in rates