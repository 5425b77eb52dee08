"""Evaluation of generated conformer ensembles against reference ensembles (COV/MAT).

* :mod:`~confgen.evaluation.metrics`: COV/MAT of one molecule, mean / median over molecules, the headline numbers,
  coverage curves;
* :mod:`~confgen.evaluation.matching`: molecules matched by graph, RMSD matrices (:mod:`confgen.chem.rmsd`),
  :func:`evaluate_ensembles` (the JSON contract of ``confgen evaluate``);
* :mod:`~confgen.evaluation.loading`: :func:`load_ensembles` from any reader source or an ``index.csv`` directory;
* :mod:`~confgen.evaluation.report`: the text table and the coverage plot.
"""

from confgen.evaluation.loading import index_listed_files, load_ensembles
from confgen.evaluation.matching import evaluate_ensembles
from confgen.evaluation.metrics import DEFAULT_DELTAS, aggregate, cov_mat, coverage_curve, headline
from confgen.evaluation.report import format_table, plot_coverage

__all__ = [
    "DEFAULT_DELTAS",
    "cov_mat",
    "aggregate",
    "coverage_curve",
    "headline",
    "evaluate_ensembles",
    "load_ensembles",
    "index_listed_files",
    "format_table",
    "plot_coverage",
]
