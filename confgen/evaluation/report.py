"""Reporting evaluation results: the plain-text table and the coverage plot (JSON: :func:`confgen.chem.files.write_json`
with ``finite=True``)."""

from __future__ import annotations

from typing import Sequence

from confgen.chem.files import atomic_write


def plot_coverage(curves: dict[str, dict], path, *, title: str = "", marks: Sequence[float] = ()) -> None:
    """PNG of COV-R and COV-P (percent) against delta, one line per method; written atomically.

    Args:
        curves: label -> :func:`coverage_curve` output.
        path: output PNG path.
        title: figure title.
        marks: thresholds to mark with vertical lines (e.g. the evaluation deltas).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, label in zip(axes, ("cov_r", "cov_p"), ("COV-R (recall)", "COV-P (precision)")):
        for name, curve in curves.items():
            ax.plot(curve["delta"], [100.0 * v for v in curve[key]], label=name)
        for d in marks:
            ax.axvline(d, color="0.7", lw=0.8, ls="--")
        ax.set_xlabel("delta (Angstrom)")
        ax.set_title(label)
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("coverage (%)")
    axes[1].legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120), binary=True)


def _fmt(v, pct: bool) -> str:
    if v is None:
        return "-"
    return f"{100.0 * v:.1f}" if pct else f"{v:.3f}"


def format_table(result: dict, title: str = "") -> str:
    """A plain-text table of the aggregated metrics (COV in %, MAT in Angstrom, mean / median)."""
    lines = []
    if title:
        lines.append(title)
    lines.append(
        f"{result['n_molecules']} reference molecules ({result.get('n_ref_conformers', '?')} conformers), "
        f"{result.get('n_gen_conformers', '?')} generated conformers; {result.get('n_missing', 0)} without "
        f"generated conformers (COV 0), {result['n_failed']} failed"
    )
    header = f"{'delta':>6}  {'COV-R %':>13}  {'MAT-R A':>13}  {'COV-P %':>13}  {'MAT-P A':>13}"
    lines.append(header)
    lines.append("-" * len(header))
    for r in result["results"]:
        cells = []
        for key, pct in (("cov_r", True), ("mat_r", False), ("cov_p", True), ("mat_p", False)):
            cells.append(f"{_fmt(r[key + '_mean'], pct)} / {_fmt(r[key + '_median'], pct)}".rjust(13))
        lines.append(f"{r['delta']:>6.2f}  " + "  ".join(cells))
    lines.append("(mean / median over molecules)")
    return "\n".join(lines)
