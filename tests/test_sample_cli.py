"""``confgen sample`` end to end: every input format, counts, properties, stereo, seeds, bad input."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rdkit import Chem

from confgen.cli import main
from confgen.io import PROP_CONF_ID, PROP_INDEX, PROP_MMFF_ENERGY, PROP_SMILES, read_sdf_conformers
from confgen.stereo import check_stereo, stereo_spec

from sample_models import TINY_PRESET, tiny_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY_ARGS = [f"--preset-override={k}={v}" for k, v in TINY_PRESET.items() if k != "base"]


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
    bad.write_text("C[C@H](N)O good1\nC1CC broken\n[Na+].[Cl-] salt\n" + "C" * 201 + " huge\nCC/C=C/C good2\n")
    out = tmp_path / "out.sdf"
    cmd = [sys.executable, "-m", "confgen", "sample", str(bad), "-o", str(out), "-n", "2", "--seed", "0",
           "--model", tiny_checkpoint(), "--workers", "1", "--no-progress", *TINY_ARGS]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 3 and "Traceback" not in proc.stderr
    assert "bad.smi:2 'C1CC': invalid SMILES" in errors[0]
    assert "bad.smi:3 '[Na+].[Cl-]': unsupported element Na" in errors[1]
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
    assert code == 1 and err.count("needs an n_conformers value") == 11
