"""The benchmark harness behind ``alliancetraj benchmark`` and ``benchmarks/run_benchmark.py``.

Every available classification method runs on a grid of simulated cohorts (the
grid is defined once, in :data:`FULL_GRID` / :data:`QUICK_GRID`, and printed by
:func:`describe_grid`). Each method sees the same cohorts (paired comparison),
and each cohort is drawn from a seed derived from the base seed, the cell's name
and the replicate, so a cell draws the same cohorts in the quick and the full
runs and any row can be reproduced with
``simulate_cohort(n_dyads, seed=row.sim_seed, **cell.simulate_kwargs())``.

What is measured (see :mod:`alliancetraj.metrics` for the scores)

* classification: accuracy, macro-F1, per-class F1, the confusion matrix, the
  multiclass Brier score, top-label and classwise expected calibration error
  (10 equal-width bins);
* change points: rupture and repair session located exactly / within one session;
* runtime: wall-clock seconds of ``alliancetraj.classify()`` alone (validation
  included, simulation excluded), one process, after one untimed warm-up call per
  method (imports, compilation and caches are not counted), reported per 1,000 dyads;
* peak memory: the ``tracemalloc`` peak during a separate, traced call of
  ``classify()`` on the same cohort (the first replicate of each cell by default),
  above what was allocated before the call. It counts Python objects and NumPy
  arrays (NumPy reports its buffers to tracemalloc); it does not count memory that
  compiled extensions allocate privately (BLAS work space, PyTensor/C caches,
  thread stacks), so it is a lower bound on the resident-set growth. The traced
  call is not timed, because tracing slows Python-heavy code.

Outputs (in ``out``; the prefix is ``benchmark`` or ``benchmark_quick``)

``<prefix>_results.csv``
    Tidy: one row per method x cell x replicate.
``<prefix>_confusion.csv``, ``<prefix>_reliability.csv``
    Tidy counts (confusion) and binned sums (top-label reliability) per method x
    cell x replicate; both are additive, so any pooling is a group-by and sum.
``<prefix>_runtime.csv``
    The runtime scan: seconds against the number of dyads for every method.
``<prefix>_summary.md``
    Markdown tables aggregated over replicates (median with IQR or min–max).
``<prefix>_meta.json``
    Command, grid, versions and machine.
``<prefix>_confusion.png``, ``<prefix>_reliability.png``, ``<prefix>_runtime.png``
    Figures (matplotlib, drawn without pyplot).

The package's modules: :mod:`~alliancetraj.bench.grid` (the grid and its cells),
:mod:`~alliancetraj.bench.measure` (method runners, timing and memory),
:mod:`~alliancetraj.bench.run` (:func:`run_benchmark` and the runtime scan),
:mod:`~alliancetraj.bench.summary` (the Markdown summary),
:mod:`~alliancetraj.bench.figures` (the figures) and
:mod:`~alliancetraj.bench.worlds_run` (:func:`run_worlds`).
"""

from __future__ import annotations

# ``simulate_cohort``, ``Runner`` and ``_cell_seed`` stay reachable here as in the
# single-module ``bench`` (run_benchmark itself finds ``simulate_cohort`` in
# :mod:`alliancetraj.bench.run`: patch it there).
from ..simulate import simulate_cohort as simulate_cohort
from .grid import (
    CONDITION_NOTES,
    CONDITIONS,
    DEFAULT_METHODS,
    FULL_GRID,
    NOISE_LEVELS,
    QUICK_GRID,
    QUICK_METHODS,
    BenchmarkGrid,
    Cell,
    describe_grid,
)
from .measure import BenchmarkResults, available_methods
from .measure import Runner as Runner
from .measure import _cell_seed as _cell_seed
from .run import RESULT_COLUMNS, run_benchmark
from .worlds_run import run_worlds

__all__ = [
    "CONDITIONS",
    "CONDITION_NOTES",
    "DEFAULT_METHODS",
    "FULL_GRID",
    "NOISE_LEVELS",
    "QUICK_GRID",
    "QUICK_METHODS",
    "RESULT_COLUMNS",
    "BenchmarkGrid",
    "BenchmarkResults",
    "Cell",
    "available_methods",
    "describe_grid",
    "run_benchmark",
    "run_worlds",
]
