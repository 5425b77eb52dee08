"""confgen.evaluation.metrics and .report: COV/MAT against the definitions, aggregation, curves, the table."""

import numpy as np
import pytest

from confgen.evaluation import aggregate, cov_mat, coverage_curve, format_table, headline, plot_coverage


def _brute_cov_mat(d: np.ndarray, deltas):
    """Textbook loops over the definitions."""
    n_ref, n_gen = d.shape
    cov_r, cov_p = [], []
    for delta in deltas:
        cov_r.append(sum(any(d[i, j] < delta for j in range(n_gen)) for i in range(n_ref)) / n_ref)
        cov_p.append(sum(any(d[i, j] < delta for i in range(n_ref)) for j in range(n_gen)) / n_gen)
    mat_r = sum(min(d[i, j] for j in range(n_gen)) for i in range(n_ref)) / n_ref
    mat_p = sum(min(d[i, j] for i in range(n_ref)) for j in range(n_gen)) / n_gen
    return cov_r, mat_r, cov_p, mat_p


def test_cov_mat_hand_computed():
    d = np.array([[0.3, 1.0, 2.0], [0.8, 0.6, 1.5]])
    res = cov_mat(d, [0.5, 0.7, 1.25])
    # reference minima 0.3, 0.6; generated minima 0.3, 0.6, 1.5
    assert res["cov_r"] == [0.5, 1.0, 1.0]
    assert res["mat_r"] == pytest.approx(0.45)
    assert res["cov_p"] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert res["mat_p"] == pytest.approx(0.8)
    assert (res["n_ref"], res["n_gen"]) == (2, 3)


def test_cov_mat_random_against_brute_force():
    rng = np.random.default_rng(0)
    deltas = [0.5, 0.75, 1.25]
    for _ in range(20):
        d = rng.uniform(0.0, 2.0, size=(rng.integers(1, 6), rng.integers(1, 9)))
        res = cov_mat(d, deltas)
        cov_r, mat_r, cov_p, mat_p = _brute_cov_mat(d, deltas)
        assert res["cov_r"] == pytest.approx(cov_r)
        assert res["cov_p"] == pytest.approx(cov_p)
        assert res["mat_r"] == pytest.approx(mat_r)
        assert res["mat_p"] == pytest.approx(mat_p)


def test_missing_generated_counts_as_zero_coverage():
    res = cov_mat(np.zeros((4, 0)), [0.5, 1.25])
    assert res["cov_r"] == [0.0, 0.0]
    assert res["mat_r"] is None and res["cov_p"] is None
    full = cov_mat(np.array([[0.1, 0.2]]), [0.5, 1.25])
    rows = aggregate([res, full], [0.5, 1.25])
    assert rows[0]["cov_r_mean"] == pytest.approx(0.5)  # (0 + 1) / 2: the missing molecule counts
    assert rows[0]["mat_r_mean"] == pytest.approx(0.1)  # undefined MAT-R left out
    assert rows[1]["cov_p_median"] == pytest.approx(1.0)


def test_coverage_curve_from_per_molecule_minima():
    rows = [{"ref_min": [0.2, None], "gen_min": [0.2, 0.9]}, {"ref_min": [1.0], "gen_min": []}]
    curve = coverage_curve(rows, [0.5, 1.5])
    assert curve["delta"] == [0.5, 1.5]
    assert curve["cov_r"] == pytest.approx([(0.5 + 0.0) / 2, (0.5 + 1.0) / 2])  # a None minimum never covers
    assert curve["cov_p"] == pytest.approx([0.5, 1.0])  # the molecule without generated conformers is left out


def test_headline_numbers_from_aggregated_rows():
    d = np.array([[0.3, 1.0, 2.0], [0.8, 0.6, 1.5]])  # the hand-computed case above
    rows = aggregate([cov_mat(d, [0.5, 0.75, 1.25]), cov_mat(np.zeros((2, 0)), [0.5, 0.75, 1.25])], [0.5, 0.75, 1.25])
    h = headline(rows)
    assert h == {"cov_r@0.75": 50.0, "cov_p@0.75": 66.7, "cov_r@1.25": 50.0, "cov_p@1.25": 66.7,
                 "mat_r": 0.45, "mat_p": 0.8}  # COV-R of the empty molecule counts 0; its MAT/COV-P is left out
    with pytest.raises(KeyError):
        headline(rows, deltas=(1.0,))


def test_format_table_and_plot(tmp_path):
    per = [cov_mat(np.array([[0.3, 1.0], [0.8, 0.6]]), [0.5, 1.25])]
    result = {"n_molecules": 1, "n_failed": 0, "n_ref_conformers": 2, "n_gen_conformers": 2,
              "results": aggregate(per, [0.5, 1.25])}
    text = format_table(result, title="t")
    lines = text.splitlines()
    assert lines[0] == "t" and lines[-1] == "(mean / median over molecules)"
    assert lines[4].split() == ["0.50", "50.0", "/", "50.0", "0.450", "/", "0.450", "50.0", "/", "50.0", "0.450", "/", "0.450"]
    png = tmp_path / "cov.png"
    plot_coverage({"a": {"delta": [0.5, 1.0], "cov_r": [0.5, 1.0], "cov_p": [0.2, 0.4]}}, png, marks=[0.75])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["cov.png"]
