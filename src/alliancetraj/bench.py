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
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import platform
import sys
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .methods import get_method, method_names
from .metrics import DEFAULT_BINS, score_result
from .results import CLASSES, ClassificationResult
from .simulate import simulate_cohort

__all__ = [
    "CONDITIONS",
    "DEFAULT_METHODS",
    "FULL_GRID",
    "NOISE_LEVELS",
    "QUICK_GRID",
    "QUICK_METHODS",
    "BenchmarkGrid",
    "BenchmarkResults",
    "Cell",
    "available_methods",
    "describe_grid",
    "run_benchmark",
    "run_worlds",
]

# ------------------------------------------------------------------------------ the grid
#: Residual SD (median over dyads, score units on a 1-5 scale) of the two noise levels.
NOISE_LEVELS: dict[str, float] = {"low": 0.15, "high": 0.35}

#: Data-generating conditions: keyword arguments of :func:`simulate_cohort` on top of
#: the cell's sessions and noise. ``well_specified`` is the simulator's default
#: (independent Gaussian residuals; scores clipped to 1-5 and rounded to 1/12, as a
#: WAI-SR item mean). The others break one assumption of the models each.
CONDITIONS: dict[str, dict[str, Any]] = {
    "well_specified": {},
    "ar1": {"ar1": 0.3},
    "t4": {"df": 4.0},
    "ceiling": {"level": 4.4},
    "missing": {"missing": 0.2},
}

#: One line per condition for the tables and the README.
CONDITION_NOTES: dict[str, str] = {
    "well_specified": "independent Gaussian residuals (the simulator's default)",
    "ar1": "AR(1) residuals, phi = 0.3",
    "t4": "Student-t residuals, 4 df (same SD)",
    "ceiling": "mean level 4.4 instead of 3.6: scores pile up at the scale maximum 5",
    "missing": "20% of sessions missing at random (never session 1, a rupture or a repair)",
}

#: Methods run when none are named: every method of ``classify`` except the slow
#: sampler ``pymc`` (name it explicitly with ``methods=[..., "pymc"]``).
DEFAULT_METHODS: tuple[str, ...] = ("exact", "growth", "rules", "pelt")

#: Methods of the quick mode when none are named (the same as the full run's;
#: ``exact``'s empirical-Bayes fit on the quick cohorts takes a few seconds).
QUICK_METHODS: tuple[str, ...] = ("exact", "growth", "rules", "pelt")


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: sessions per dyad, noise level and condition."""

    n_sessions: int
    noise: str
    condition: str

    def __post_init__(self) -> None:
        if self.noise not in NOISE_LEVELS:
            raise ValueError(
                f"Unknown noise level {self.noise!r}. Valid levels: {list(NOISE_LEVELS)}."
            )
        if self.condition not in CONDITIONS:
            raise ValueError(
                f"Unknown condition {self.condition!r}. Valid conditions: {list(CONDITIONS)}."
            )

    @property
    def name(self) -> str:
        """A stable id such as ``s12-low-well_specified``."""
        return f"s{self.n_sessions}-{self.noise}-{self.condition}"

    def simulate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~alliancetraj.simulate_cohort` for this cell."""
        return {
            "n_sessions": int(self.n_sessions),
            "noise": NOISE_LEVELS[self.noise],
            **CONDITIONS[self.condition],
        }


@dataclass(frozen=True)
class BenchmarkGrid:
    """The benchmark design: cells, cohort size, replicates and the runtime scan.

    Attributes
    ----------
    cells : tuple of Cell
    n_dyads : int
        Dyads per simulated cohort.
    n_seeds : int
        Replicate cohorts per cell (the spread in the summary is over these).
    scan_sizes : tuple of int
        Cohort sizes of the runtime scan (runtime against number of dyads).
    scan_cell : Cell
        The cell the runtime scan simulates.
    """

    cells: tuple[Cell, ...]
    n_dyads: int
    n_seeds: int
    scan_sizes: tuple[int, ...]
    scan_cell: Cell = Cell(12, "low", "well_specified")

    @classmethod
    def factorial(
        cls,
        sessions: Sequence[int],
        noise: Sequence[str],
        conditions: Sequence[str],
        **kwargs: Any,
    ) -> BenchmarkGrid:
        """Every combination of sessions x noise x condition."""
        cells = tuple(Cell(s, n, c) for s, n, c in product(sessions, noise, conditions))
        return cls(cells=cells, **kwargs)

    def replace(self, **changes: Any) -> BenchmarkGrid:
        """A copy with some attributes changed (None values are ignored)."""
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values.update({k: v for k, v in changes.items() if v is not None})
        return BenchmarkGrid(**values)


#: The full grid, run by hand: sessions 8/12/20/30 x noise low/high x 5 conditions
#: (40 cells), 3 replicate cohorts of 500 dyads each, runtime scan up to 2,000 dyads.
FULL_GRID = BenchmarkGrid.factorial(
    sessions=(8, 12, 20, 30),
    noise=tuple(NOISE_LEVELS),
    conditions=tuple(CONDITIONS),
    n_dyads=500,
    n_seeds=3,
    scan_sizes=(250, 500, 1000, 2000),
)

#: The quick grid (``--quick``, exercised by the tests): two contrasting cells,
#: one replicate of 150 dyads, a small runtime scan.
QUICK_GRID = BenchmarkGrid(
    cells=(Cell(12, "low", "well_specified"), Cell(8, "high", "missing")),
    n_dyads=150,
    n_seeds=1,
    scan_sizes=(50, 150),
)


def describe_grid(grid: BenchmarkGrid = FULL_GRID) -> str:
    """A Markdown description of ``grid`` (quoted by the README and the summary)."""
    sessions = sorted({c.n_sessions for c in grid.cells})
    noises = [n for n in NOISE_LEVELS if any(c.noise == n for c in grid.cells)]
    conds = [k for k in CONDITIONS if any(c.condition == k for c in grid.cells)]
    full = len(sessions) * len(noises) * len(conds) == len(grid.cells)
    lines = [
        f"- cells: {len(grid.cells)}"
        + (
            " (every combination of the factors below)"
            if full
            else ": " + ", ".join(c.name for c in grid.cells)
        ),
        f"- sessions per dyad: {' / '.join(str(s) for s in sessions)}",
        "- noise (median residual SD, 1-5 scale): "
        + ", ".join(f"{n} {NOISE_LEVELS[n]:g}" for n in noises),
        "- conditions:",
        *[f"  - `{k}`: {CONDITION_NOTES[k]}" for k in conds],
        f"- {grid.n_dyads} dyads per cohort, {grid.n_seeds} replicate cohort(s) per cell; "
        "true classes drawn with shares linear 0.4, u_shaped / v_shaped / "
        "unrepaired_rupture 0.2 each",
        f"- runtime scan: {', '.join(str(n) for n in grid.scan_sizes)} dyads in cell "
        f"`{grid.scan_cell.name}`",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ methods
Runner = Callable[[pd.DataFrame], ClassificationResult]


def available_methods(methods: Sequence[str] | None = None) -> dict[str, str | None]:
    """Which methods import: name -> None when available, else the reason.

    Parameters
    ----------
    methods : sequence of str, optional
        Names of registered methods (:data:`alliancetraj.methods.REGISTRY`); default:
        every method.
    """
    names = method_names() if methods is None else list(methods)
    return {name: get_method(name).unavailable() for name in names}


def _accepts(func: Callable, name: str) -> bool:
    """Whether a caller-supplied callable (not a registered method) takes ``name``."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _classify_runner(name: str, options: Mapping[str, Any]) -> Callable[[int], Runner]:
    """A factory: replicate seed -> function sessions -> result, through ``classify``."""
    from .dispatch import classify

    method = get_method(name)
    auto: dict[str, Any] = {}
    if "progress" in method.options:
        auto["progress"] = False

    def make(seed: int) -> Runner:
        opts = dict(auto)
        if method.uses_seed:
            opts["seed"] = seed
        opts.update(options)
        return lambda sessions: classify(sessions, method=name, **opts)

    return make


def _custom_runner(func: Callable[..., ClassificationResult]) -> Callable[[int], Runner]:
    takes_seed = _accepts(func, "seed")

    def make(seed: int) -> Runner:
        if takes_seed:
            return lambda sessions: func(sessions, seed=seed)
        return func

    return make


def _resolve_methods(
    methods: Sequence[str] | Mapping[str, Callable] | None,
    quick: bool,
    method_options: Mapping[str, Mapping[str, Any]] | None,
    echo: Callable[[str], None],
) -> dict[str, Callable[[int], Runner]]:
    options = dict(method_options or {})
    runners: dict[str, Callable[[int], Runner]] = {}
    if isinstance(methods, Mapping):
        for name, func in methods.items():
            if isinstance(func, str):
                raise TypeError("methods= as a mapping takes name -> callable")
            runners[str(name)] = _custom_runner(func)
        return runners
    if isinstance(methods, str):
        methods = [methods]
    default = QUICK_METHODS if quick else DEFAULT_METHODS
    names = list(default) if methods is None else list(dict.fromkeys(methods))
    if methods is None:
        names = [n for n in names if n in method_names()]
    status = available_methods(names)
    for name, reason in status.items():
        if reason is not None:
            echo(f"note: skipping method {name!r}, not available ({reason})")
            continue
        runners[name] = _classify_runner(name, options.get(name, {}))
    return runners


# ----------------------------------------------------------------------- measurement
def _cell_seed(base: int, cell: Cell, replicate: int) -> int:
    """A seed for (base seed, cell, replicate), stable across grids."""
    key = zlib.crc32(cell.name.encode())
    state = np.random.SeedSequence([int(base), key, int(replicate)]).generate_state(1)
    return int(state[0])


def _call_quietly(runner: Runner, sessions: pd.DataFrame) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner(sessions)
    return result, [f"{w.category.__name__}: {w.message}" for w in caught]


def _timed(runner: Runner, sessions: pd.DataFrame) -> tuple[Any, float, list[str]]:
    gc.collect()
    start = time.perf_counter()
    result, caught = _call_quietly(runner, sessions)
    return result, time.perf_counter() - start, caught


def _traced_peak_mib(runner: Runner, sessions: pd.DataFrame) -> float:
    """tracemalloc peak above the allocations present before the call, in MiB."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        _call_quietly(runner, sessions)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(peak - before, 0) / 2**20


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------- results
@dataclass
class BenchmarkResults:
    """What :func:`run_benchmark` measured and where it wrote it.

    Attributes
    ----------
    results : DataFrame
        One row per method x cell x replicate (the ``_results.csv``).
    confusion, reliability, runtime : DataFrame
        The tidy confusion counts, binned reliability sums and runtime scan.
    summary : str
        The Markdown summary.
    files : list of Path
        Every file written.
    skipped : dict
        Methods skipped: name -> reason.
    """

    results: pd.DataFrame
    confusion: pd.DataFrame
    reliability: pd.DataFrame
    runtime: pd.DataFrame
    summary: str
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


_SCORE_COLUMNS = (
    "accuracy",
    "macro_f1",
    *(f"f1_{c}" for c in CLASSES),
    "brier",
    "ece",
    "classwise_ece",
    "rupture_exact",
    "rupture_within_1",
    "rupture_located",
    "rupture_mae",
    "repair_exact",
    "repair_within_1",
    "repair_located",
    "repair_mae",
)
RESULT_COLUMNS: tuple[str, ...] = (
    "method",
    "cell",
    "n_sessions",
    "noise",
    "noise_sd",
    "condition",
    "replicate",
    "sim_seed",
    "n_dyads",
    "n_classified",
    *_SCORE_COLUMNS,
    "runtime_s",
    "runtime_per_1000_s",
    "peak_memory_mib",
    "n_warnings",
    "warning",
    "error",
)


def run_benchmark(
    out: str | os.PathLike = "benchmarks/results",
    *,
    quick: bool = False,
    methods: Sequence[str] | Mapping[str, Callable] | None = None,
    seed: int = 0,
    echo: Callable[[str], None] = print,
    n_dyads: int | None = None,
    n_seeds: int | None = None,
    grid: BenchmarkGrid | None = None,
    scan_sizes: Sequence[int] | None = None,
    memory: str | None = None,
    warmup: bool | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    figures: bool = True,
    prefix: str | None = None,
    command: str | None = None,
    worlds: str | Sequence[str] | None = None,
) -> BenchmarkResults:
    """Run every available method on the benchmark grid and write the results.

    Parameters
    ----------
    out : path, default ``benchmarks/results``
        Output folder (created).
    quick : bool, default False
        Run :data:`QUICK_GRID` (about a minute) instead of :data:`FULL_GRID`; the
        files are then prefixed ``benchmark_quick`` so they never overwrite a full run.
    methods : list of str, or mapping name -> callable, optional
        Method names of :func:`alliancetraj.classify` (default: :data:`DEFAULT_METHODS`,
        in quick mode :data:`QUICK_METHODS`; ``"pymc"`` only when named). Methods whose module does not import are skipped
        with a printed note. A mapping benchmarks your own classifiers: each callable
        takes the long session frame (and ``seed=`` if it accepts it) and returns a
        :class:`~alliancetraj.ClassificationResult`.
    seed : int, default 0
        Base seed; every cohort's seed derives from it, the cell and the replicate.
    echo : callable, default print
        Where progress lines go (``lambda s: None`` for silence).
    n_dyads, n_seeds : int, optional
        Override the grid's cohort size and number of replicates.
    grid : BenchmarkGrid, optional
        A custom grid (then ``quick`` only picks the file prefix).
    scan_sizes : sequence of int, optional
        Override the cohort sizes of the runtime scan (an empty sequence skips it).
    memory : {"first", "all", "scan", "none"}, optional
        Where a separate, untimed, traced call measures the peak memory: the first
        replicate of every cell (``"first"``, the default), every replicate
        (``"all"``), or only the cohorts of the runtime scan (``"scan"``, which
        ``"first"`` and ``"all"`` include too); ``"none"`` (the quick-mode default)
        measures nothing.
    warmup : bool, optional
        One untimed call per method on a small cohort before timing (default True;
        False in quick mode, whose timings then include imports and first-call costs).
    method_options : mapping name -> dict, optional
        Extra keyword options per method, passed to ``classify``.
    figures : bool, default True
        Write the PNG figures (needs matplotlib).
    prefix : str, optional
        File-name prefix (default ``benchmark`` or ``benchmark_quick``).
    command : str, optional
        The command line to record in the summary (default: the equivalent
        ``alliancetraj benchmark`` call).
    worlds : "all", str or sequence of str, optional
        Run on the independent worlds of :mod:`alliancetraj.worlds` instead of the
        grid: ``n_dyads`` (default: each world's own size) and ``n_seeds`` (default 2)
        apply; ``grid``, ``quick``, ``scan_sizes`` and ``memory`` do not. Files are
        prefixed ``worlds`` (see :func:`run_worlds`).

    Returns
    -------
    BenchmarkResults

    Examples
    --------
    >>> from alliancetraj.bench import run_benchmark
    >>> res = run_benchmark("bench-out", quick=True)  # doctest: +SKIP
    >>> res.results.groupby("method")["accuracy"].median()  # doctest: +SKIP
    """
    if worlds is not None:
        return run_worlds(
            out, worlds=worlds, methods=methods, seed=seed, n_dyads=n_dyads, n_seeds=n_seeds,
            echo=echo, method_options=method_options, warmup=warmup, prefix=prefix,
            command=command,
        )
    if memory is None:
        memory = "none" if quick else "first"
    if warmup is None:
        warmup = not quick
    if memory not in ("first", "all", "scan", "none"):
        raise ValueError(
            "The 'memory' parameter must be 'first', 'all', 'scan' or 'none'. Got "
            f"{memory!r} instead."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"The 'seed' parameter must be an int >= 0. Got {seed!r} instead.")
    for name, value in (("n_dyads", n_dyads), ("n_seeds", n_seeds)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(
                f"The '{name}' parameter of run_benchmark must be an int >= 1. Got {value!r} "
                "instead."
            )
    base = grid if grid is not None else (QUICK_GRID if quick else FULL_GRID)
    grid = base.replace(
        n_dyads=n_dyads,
        n_seeds=n_seeds,
        scan_sizes=tuple(int(n) for n in scan_sizes) if scan_sizes is not None else None,
    )
    prefix = prefix or ("benchmark_quick" if quick else "benchmark")
    if command is None:
        command = _default_command(out, quick, methods, seed, n_dyads, n_seeds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    runners = _resolve_methods(methods, quick, method_options, echo)
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    echo(
        f"benchmark: {len(grid.cells)} cell(s) x {grid.n_seeds} replicate(s) x "
        f"{grid.n_dyads} dyads; methods: {', '.join(runners) or 'none'}"
    )

    # warm-up: imports, compilation and caches are not timed; a method that fails here
    # is skipped with a note
    warm = simulate_cohort(
        20, seed=_cell_seed(seed, grid.scan_cell, 10_000), **grid.scan_cell.simulate_kwargs()
    )
    for name in list(runners) if warmup else []:
        try:
            _call_quietly(runners[name](0), warm.sessions)
        except Exception as exc:
            reason = _short(f"{type(exc).__name__}: {exc}")
            echo(f"note: skipping method {name!r}, it failed on a small cohort ({reason})")
            skipped[name] = reason
            del runners[name]

    rows: list[dict[str, Any]] = []
    confusion: list[pd.DataFrame] = []
    reliability: list[pd.DataFrame] = []
    for cell in grid.cells:
        for rep in range(grid.n_seeds):
            sim_seed = _cell_seed(seed, cell, rep)
            cohort = simulate_cohort(grid.n_dyads, seed=sim_seed, **cell.simulate_kwargs())
            notes = []
            for name, make in runners.items():
                runner = make(sim_seed)
                row: dict[str, Any] = {
                    "method": name,
                    "cell": cell.name,
                    "n_sessions": cell.n_sessions,
                    "noise": cell.noise,
                    "noise_sd": NOISE_LEVELS[cell.noise],
                    "condition": cell.condition,
                    "replicate": rep,
                    "sim_seed": sim_seed,
                    "n_dyads": grid.n_dyads,
                }
                try:
                    result, seconds, caught = _timed(runner, cohort.sessions)
                    peak = np.nan
                    if memory == "all" or (memory == "first" and rep == 0):
                        peak = _traced_peak_mib(runner, cohort.sessions)
                    scores = score_result(result, cohort.truth, n_bins=DEFAULT_BINS)
                except Exception as exc:
                    reason = _short(f"{type(exc).__name__}: {exc}")
                    echo(f"note: {name!r} failed on {cell.name} replicate {rep} ({reason})")
                    row["error"] = reason
                    rows.append(row)
                    continue
                keys = ("confusion", "reliability")
                row.update({k: v for k, v in scores.items() if k not in keys})
                row.update(
                    {
                        "runtime_s": seconds,
                        "runtime_per_1000_s": seconds / grid.n_dyads * 1000.0,
                        "peak_memory_mib": peak,
                        "n_warnings": len(caught),
                        "warning": _short(caught[0]) if caught else "",
                        "error": "",
                    }
                )
                rows.append(row)
                ids = {"method": name, "cell": cell.name, "replicate": rep}
                cm = scores["confusion"].stack().rename("count").reset_index()
                confusion.append(cm.assign(**ids))
                rel = scores["reliability"].drop(columns=["confidence", "observed"])
                reliability.append(rel.assign(**ids))
                notes.append(f"{name} {row['accuracy']:.3f} ({seconds:.2f} s)")
            echo(f"  {cell.name} rep {rep}: accuracy " + ", ".join(notes))

    results = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    confusion_df = _tidy(confusion, ["method", "cell", "replicate", "true", "predicted", "count"])
    reliability_df = _tidy(
        reliability,
        [
            "method",
            "cell",
            "replicate",
            "class",
            "bin",
            "bin_low",
            "bin_high",
            "count",
            "sum_confidence",
            "sum_observed",
        ],
    )
    runtime_df = _runtime_scan(runners, grid, seed, echo, results, trace=memory != "none")

    meta = _meta(grid, seed, command, list(runners), skipped, time.perf_counter() - started, memory)
    summary = _summary_markdown(results, runtime_df, grid, meta)
    files = [
        _write_csv(results, out / f"{prefix}_results.csv"),
        _write_csv(confusion_df, out / f"{prefix}_confusion.csv"),
        _write_csv(reliability_df, out / f"{prefix}_reliability.csv"),
        _write_csv(runtime_df, out / f"{prefix}_runtime.csv"),
    ]
    path = out / f"{prefix}_summary.md"
    path.write_text(summary, encoding="utf-8")
    files.append(path)
    path = out / f"{prefix}_meta.json"
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    files.append(path)
    if figures and len(results):
        files.extend(_write_figures(out, prefix, results, confusion_df, reliability_df, runtime_df))
    echo(
        f"wrote {len(files)} files to {out}/ in {time.perf_counter() - started:.0f} s "
        f"(command: {command})"
    )
    return BenchmarkResults(
        results=results,
        confusion=confusion_df,
        reliability=reliability_df,
        runtime=runtime_df,
        summary=summary,
        files=files,
        skipped=skipped,
    )


def _tidy(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True).reindex(columns=columns)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, float_format="%.6g")
    return path


def _runtime_scan(
    runners: Mapping[str, Callable[[int], Runner]],
    grid: BenchmarkGrid,
    seed: int,
    echo: Callable[[str], None],
    results: pd.DataFrame,
    trace: bool,
) -> pd.DataFrame:
    """Seconds (and traced peak MiB) against cohort size; the grid's runs of the scan cell
    at its own cohort size are reused."""
    rows = []
    if grid.n_dyads in grid.scan_sizes and grid.scan_cell in grid.cells and len(results):
        done = results[
            (results["cell"] == grid.scan_cell.name) & (results["error"].fillna("") == "")
        ]
        rows += [
            {
                "method": r.method,
                "cell": r.cell,
                "n_dyads": int(r.n_dyads),
                "seconds": r.runtime_s,
                "runtime_per_1000_s": r.runtime_per_1000_s,
                "peak_memory_mib": r.peak_memory_mib,
            }
            for r in done.itertuples()
        ]
    for n in grid.scan_sizes:
        if rows and n == grid.n_dyads and grid.scan_cell in grid.cells:
            continue
        sim_seed = _cell_seed(seed, grid.scan_cell, 1_000 + int(n))
        cohort = simulate_cohort(int(n), seed=sim_seed, **grid.scan_cell.simulate_kwargs())
        parts = []
        for name, make in runners.items():
            try:
                _, seconds, _ = _timed(make(sim_seed), cohort.sessions)
                peak = _traced_peak_mib(make(sim_seed), cohort.sessions) if trace else np.nan
            except Exception as exc:
                echo(
                    f"note: {name!r} failed in the runtime scan at {n} dyads "
                    f"({_short(f'{type(exc).__name__}: {exc}')})"
                )
                continue
            rows.append(
                {
                    "method": name,
                    "cell": grid.scan_cell.name,
                    "n_dyads": int(n),
                    "seconds": seconds,
                    "runtime_per_1000_s": seconds / n * 1000.0,
                    "peak_memory_mib": peak,
                }
            )
            parts.append(f"{name} {seconds:.2f} s")
        if parts:
            echo(f"  runtime scan, {n} dyads: " + ", ".join(parts))
    return pd.DataFrame(
        rows,
        columns=["method", "cell", "n_dyads", "seconds", "runtime_per_1000_s", "peak_memory_mib"],
    )


def _default_command(out, quick, methods, seed, n_dyads, n_seeds) -> str:
    parts = ["alliancetraj", "benchmark", "--out", str(out)]
    if quick:
        parts.append("--quick")
    if methods is not None and not isinstance(methods, Mapping):
        parts += ["--methods", *([methods] if isinstance(methods, str) else list(methods))]
    parts += ["--seed", str(seed)]
    if n_dyads is not None:
        parts += ["--n-dyads", str(n_dyads)]
    if n_seeds is not None:
        parts += ["--n-seeds", str(n_seeds)]
    return " ".join(parts)


def _meta(
    grid: BenchmarkGrid,
    seed: int,
    command: str,
    methods: list[str],
    skipped: Mapping[str, str],
    seconds: float,
    memory: str,
) -> dict[str, Any]:
    from ._version import __version__

    versions = {
        "alliancetraj": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    for mod in ("scipy", "statsmodels", "pymc", "ruptures"):
        module = sys.modules.get(mod)
        if module is not None:
            versions[mod] = getattr(module, "__version__", "?")
    grid_dict = asdict(grid)
    return {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": seed,
        "methods": methods,
        "skipped": dict(skipped),
        "grid": grid_dict,
        "conditions": CONDITIONS,
        "noise_levels": NOISE_LEVELS,
        "memory": memory,
        "wall_seconds": round(seconds, 1),
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }


# ------------------------------------------------------------------------------ summary
def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if digits == 0:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _fmt_seconds(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.3g}"


def _spread(values: pd.Series, how: str, fmt: Callable[[float], str]) -> str:
    """``median (low–high)``: IQR (``how='iqr'``) or range (``how='range'``)."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return "–"
    med = float(np.median(v))
    if len(v) == 1:
        return fmt(med)
    lo, hi = np.percentile(v, [25, 75]) if how == "iqr" else (v.min(), v.max())
    if fmt(lo) == fmt(hi):
        return fmt(med)
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


_SUMMARY_METRICS = (
    ("accuracy", "accuracy", _fmt),
    ("macro_f1", "macro-F1", _fmt),
    ("brier", "Brier", _fmt),
    ("ece", "ECE", _fmt),
    ("rupture_within_1", "rupture ±1", _fmt),
    ("repair_within_1", "repair ±1", _fmt),
    ("runtime_per_1000_s", "s / 1000 dyads", _fmt_seconds),
    ("peak_memory_mib", "peak MiB", _fmt_seconds),
)


def _grouped_table(results: pd.DataFrame, by: list[str], metrics, how: str) -> str:
    ok = results[results["error"].fillna("") == ""]
    # leave out columns never measured in this run (e.g. memory with memory="scan")
    metrics = [m for m in metrics if ok[m[0]].notna().any()]
    header = [*by, *(label for _, label, _ in metrics)]
    rows = []
    for key, g in ok.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append([*(str(k) for k in key), *(_spread(g[c], how, f) for c, _, f in metrics)])
    return _md_table(header, rows)


def _summary_markdown(
    results: pd.DataFrame, runtime: pd.DataFrame, grid: BenchmarkGrid, meta: Mapping[str, Any]
) -> str:
    parts = [
        "# alliancetraj benchmark",
        "",
        f"Made by `{meta['command']}` on {meta['date']} "
        f"({meta['machine']['cpu_count']} CPU(s), {meta['machine']['platform']}; "
        f"{meta['wall_seconds']:.0f} s in all).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
        "## Grid",
        "",
        describe_grid(grid),
        "",
    ]
    if meta["skipped"]:
        parts += ["Skipped: " + "; ".join(f"`{k}` ({v})" for k, v in meta["skipped"].items()), ""]
    if results.empty or (results["error"].fillna("") != "").all():
        parts += ["No method produced results.", ""]
        return "\n".join(parts)
    errors = results[results["error"].fillna("") != ""]
    n_rep = grid.n_seeds
    parts += [
        "## Headline: every cell pooled",
        "",
        "Median (interquartile range) over all cells and replicates.",
        "",
        _grouped_table(results, ["method"], _SUMMARY_METRICS, "iqr"),
        "",
        "## By condition",
        "",
        "Median (interquartile range) over sessions, noise levels and replicates.",
        "",
        _grouped_table(
            results.sort_values(["condition", "method"], key=_order_key),
            ["condition", "method"],
            _SUMMARY_METRICS[:6],
            "iqr",
        ),
        "",
        "## By sessions per dyad",
        "",
        "Median (interquartile range) over noise levels, conditions and replicates.",
        "",
        _grouped_table(
            results.sort_values(["n_sessions", "method"], key=_order_key),
            ["n_sessions", "method"],
            _SUMMARY_METRICS[:6],
            "iqr",
        ),
        "",
        "## Per-class F1",
        "",
        "Median (interquartile range) over all cells and replicates.",
        "",
        _grouped_table(results, ["method"], [(f"f1_{c}", f"F1 {c}", _fmt) for c in CLASSES], "iqr"),
        "",
        "## Every cell",
        "",
        (
            f"Median (min–max) over {n_rep} replicate cohorts of {grid.n_dyads} dyads."
            if n_rep > 1
            else f"One cohort of {grid.n_dyads} dyads per cell."
        ),
        "",
        _grouped_table(
            results,
            ["cell", "method"],
            [
                *_SUMMARY_METRICS[:4],
                ("classwise_ece", "classwise ECE", _fmt),
                ("rupture_exact", "rupture exact", _fmt),
                *_SUMMARY_METRICS[4:],
            ],
            "range",
        ),
        "",
    ]
    if not runtime.empty:
        sizes = sorted(runtime["n_dyads"].unique())
        wide = runtime.pivot_table(
            index="method", columns="n_dyads", values="seconds", aggfunc="median", sort=False
        )
        mem = runtime.pivot_table(
            index="method",
            columns="n_dyads",
            values="peak_memory_mib",
            aggfunc="median",
            sort=False,
            dropna=False,
        ).reindex(index=wide.index, columns=sizes)
        rows = []
        for m in wide.index:
            seconds = [_fmt_seconds(wide.loc[m].get(n, np.nan)) for n in sizes]
            peaks = [_fmt_seconds(mem.loc[m].get(n, np.nan)) for n in sizes]
            rows.append([m, "seconds", *seconds])
            if any(p != "–" for p in peaks):
                rows.append([m, "peak MiB", *peaks])
        parts += [
            "## Runtime against number of dyads",
            "",
            f"Seconds of `classify()` (and the traced peak memory, where measured) on cohorts "
            f"of cell `{grid.scan_cell.name}` (median where the grid itself ran that size "
            "several times).",
            "",
            _md_table(["method", "", *(f"{n} dyads" for n in sizes)], rows),
            "",
        ]
    if len(errors):
        parts += ["## Failures", ""]
        parts += [
            f"- `{r.method}` on `{r.cell}` replicate {r.replicate}: {r.error}"
            for r in errors.itertuples()
        ]
        parts += [""]
    parts += [
        "## Definitions",
        "",
        "- Scores are over the dyads a method classified (too-short series it excludes are "
        "left out; `n_classified` in the CSV).",
        "- F1 per class is NaN where a class is neither true nor predicted; macro-F1 averages "
        "the defined ones.",
        "- Brier: mean over dyads of the squared distance between the probability vector and "
        "the one-hot truth (0 best, 2 worst, 0.75 for uniform guessing).",
        f"- ECE: top-label expected calibration error with {DEFAULT_BINS} equal-width bins "
        "of the largest class probability; classwise ECE: the mean over classes of the same "
        "for each class probability. Hard-label methods (one-hot probabilities) have "
        "ECE = 1 - accuracy.",
        "- rupture / repair ±1 (exact): share of dyads whose true trajectory has that change "
        "point and whose estimate, rounded to a session, is within one session of it (equal "
        "to it); a missing estimate counts as a miss.",
        "- Runtime: wall-clock seconds of `alliancetraj.classify()` (validation included, "
        "simulation excluded), one process (a method may use threads), after an untimed "
        "warm-up call per method. Seconds per 1,000 dyads include fixed per-call costs "
        "(such as an empirical-Bayes fit), so they overstate the per-dyad cost of small "
        "cohorts; the runtime scan shows how the time grows with the number of dyads.",
        "- Peak MiB: `tracemalloc` peak during a separate, untimed call on the same cohort "
        f"({_MEMORY_NOTES[meta['memory']]}); it counts Python objects and NumPy arrays, not memory that compiled extensions "
        "allocate privately, so it is a lower bound on resident-memory growth.",
        "",
    ]
    return "\n".join(parts)


_MEMORY_NOTES = {
    "first": "the first replicate of each cell, and the runtime scan",
    "all": "every replicate, and the runtime scan",
    "scan": "the runtime scan only",
    "none": "not measured in this run",
}


def _order_key(col: pd.Series) -> pd.Series:
    if col.name == "condition":
        return col.map({k: i for i, k in enumerate(CONDITIONS)})
    if col.name == "method":
        order = {k: i for i, k in enumerate((*DEFAULT_METHODS, "pymc"))}
        return col.map(lambda m: order.get(m, len(order)))
    return col


# ------------------------------------------------------------------------------ figures
def _write_figures(
    out: Path,
    prefix: str,
    results: pd.DataFrame,
    confusion: pd.DataFrame,
    reliability: pd.DataFrame,
    runtime: pd.DataFrame,
) -> list[Path]:
    from matplotlib.figure import Figure

    from .metrics import _finish_reliability
    from .plot.benchmark import (
        plot_benchmark_metric,
        plot_confusion_matrix,
        plot_reliability,
        plot_runtime,
    )

    files = []
    methods = list(dict.fromkeys(confusion["method"]))
    if methods:
        ncol = 2 if len(methods) == 4 else min(len(methods), 3)
        nrow = -(-len(methods) // ncol)
        fig = Figure(figsize=(4.6 * ncol, 4.2 * nrow), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        for ax, method in zip(axes, methods, strict=False):
            sub = confusion[confusion["method"] == method]
            cm = sub.pivot_table(
                index="true", columns="predicted", values="count", aggfunc="sum", sort=False
            )
            cm = cm.reindex(index=list(CLASSES), columns=list(CLASSES), fill_value=0)
            plot_confusion_matrix(cm, ax=ax, title=method, colorbar=False)
        for ax in axes[len(methods) :]:
            ax.set_visible(False)
        fig.suptitle("Predicted against true class (row-normalised, all cells pooled)")
        path = out / f"{prefix}_confusion.png"
        fig.savefig(path, dpi=110)
        files.append(path)

    if not reliability.empty:
        pooled = (
            reliability.groupby(["method", "bin", "bin_low", "bin_high"], sort=False)[
                ["count", "sum_confidence", "sum_observed"]
            ]
            .sum()
            .reset_index()
        )
        tables = {m: _finish_reliability(g) for m, g in pooled.groupby("method", sort=False)}
        fig = Figure(figsize=(5.6, 5.0), layout="constrained")
        ax = fig.subplots()
        plot_reliability(tables, ax=ax)
        ax.set_title("Reliability (top label, all cells pooled)")
        path = out / f"{prefix}_reliability.png"
        fig.savefig(path, dpi=110)
        files.append(path)

    if not runtime.empty:
        fig = Figure(figsize=(5.6, 4.2), layout="constrained")
        ax = fig.subplots()
        plot_runtime(runtime, ax=ax)
        path = out / f"{prefix}_runtime.png"
        fig.savefig(path, dpi=110)
        files.append(path)

    ok = results[results["error"].fillna("") == ""]
    if not ok.empty:
        fig = Figure(figsize=(10.4, 4.0), layout="constrained")
        left, right = fig.subplots(1, 2, sharey=True)
        plot_benchmark_metric(ok, "accuracy", by="n_sessions", ax=left)
        plot_benchmark_metric(ok, "accuracy", by="condition", ax=right)
        right.tick_params(axis="x", labelrotation=20)
        fig.suptitle("Accuracy: median and IQR over the other factors and replicates")
        path = out / f"{prefix}_accuracy.png"
        fig.savefig(path, dpi=110)
        files.append(path)
    return files


# ---------------------------------------------------------------- independent worlds
def run_worlds(
    out: str | os.PathLike = "benchmarks/results",
    *,
    worlds: str | Sequence[str] = "all",
    methods: Sequence[str] | Mapping[str, Callable] | None = None,
    seed: int = 0,
    n_dyads: int | Sequence[int] | None = None,
    n_seeds: int | None = None,
    echo: Callable[[str], None] = print,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    warmup: bool | None = None,
    prefix: str | None = None,
    command: str | None = None,
) -> BenchmarkResults:
    """Run methods on the independent worlds (:mod:`alliancetraj.worlds`); write tables.

    Every method sees the same cohorts; the cohort of world ``w``, replicate ``r`` is
    ``simulate_world(w, n, seed=world_seed(seed, w, r))``. Scores per world, method
    and replicate: :func:`alliancetraj.worlds.score_world`. The headline is the worst
    world (:func:`alliancetraj.worlds.worst_worlds`).

    Parameters
    ----------
    out : path
        Output folder (created).
    worlds : "all", str or sequence of str, default "all"
        Names from :data:`alliancetraj.worlds.WORLDS`.
    methods : list of str, or mapping name -> callable, optional
        As in :func:`run_benchmark` (default :data:`DEFAULT_METHODS`); a mapping
        benchmarks your own classifiers.
    seed : int, default 0
        Base seed of the cohorts.
    n_dyads : int or sequence of int, optional
        Cohort size(s); default: each world's own (30 to 5,000 dyads).
    n_seeds : int, optional
        Replicate cohorts per world and size (default 2).
    echo, method_options, warmup, command
        As in :func:`run_benchmark` (warm-up on by default).
    prefix : str, optional
        File-name prefix, default ``worlds``.

    Returns
    -------
    BenchmarkResults
        ``results`` has one row per world x size x method x replicate; ``runtime``
        is empty. Files: ``<prefix>_results.csv``, ``<prefix>_table.csv`` (medians
        per world and method), ``<prefix>_worst.csv``, ``<prefix>_confusion.csv``,
        ``<prefix>_summary.md`` and ``<prefix>_meta.json``.

    Examples
    --------
    >>> from alliancetraj.bench import run_worlds
    >>> res = run_worlds("bench-out", worlds=["brief"], methods=["rules"],
    ...                  n_dyads=30, n_seeds=1)  # doctest: +SKIP
    """
    from .worlds import WORLDS, resolve_worlds, score_world, simulate_world, world_seed

    names = resolve_worlds(worlds)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"The 'seed' parameter of run_worlds must be an int >= 0. Got "
                         f"{seed!r} instead.")
    sizes = [None] if n_dyads is None else (
        [n_dyads] if isinstance(n_dyads, (int, np.integer)) else list(n_dyads))
    for value in [*(v for v in sizes if v is not None), n_seeds]:
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1):
            raise ValueError(f"The 'n_dyads' and 'n_seeds' parameters of run_worlds must be "
                             f"ints >= 1. Got {value!r} instead.")
    n_seeds = 2 if n_seeds is None else int(n_seeds)
    prefix = prefix or "worlds"
    command = command or (
        f"run_worlds(out={str(out)!r}, worlds={names!r}, methods={methods!r}, "
        f"seed={seed}, n_dyads={n_dyads!r}, n_seeds={n_seeds})"
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = _load_average()
    started = time.perf_counter()
    runners = _resolve_methods(methods, False, method_options, echo)
    skipped: dict[str, str] = {}
    if warmup is None or warmup:
        warm = simulate_world("balanced_wai", 20, seed=world_seed(seed, "warm-up", 0))
        for name in list(runners):
            try:
                _call_quietly(runners[name](0), warm.sessions)
            except Exception as exc:
                skipped[name] = _short(f"{type(exc).__name__}: {exc}")
                echo(f"note: skipping method {name!r}, it failed on a small cohort "
                     f"({skipped[name]})")
                del runners[name]
    echo(f"worlds: {', '.join(names)}; {n_seeds} replicate(s); methods: "
         f"{', '.join(runners) or 'none'}")
    rows: list[dict[str, Any]] = []
    confusion: list[pd.DataFrame] = []
    for world in names:
        for size in sizes:
            n = WORLDS[world].n_dyads if size is None else int(size)
            for rep in range(n_seeds):
                sim_seed = world_seed(seed, world, rep)
                cohort = simulate_world(world, n, seed=sim_seed)
                notes = []
                for name, make in runners.items():
                    row: dict[str, Any] = {"world": world, "n_dyads": n, "method": name,
                                           "replicate": rep, "sim_seed": sim_seed}
                    try:
                        result, seconds, caught = _timed(make(sim_seed), cohort.sessions)
                        scores = score_world(result, cohort.truth)
                    except Exception as exc:
                        row["error"] = _short(f"{type(exc).__name__}: {exc}")
                        echo(f"note: {name!r} failed on {world} replicate {rep} "
                             f"({row['error']})")
                        rows.append(row)
                        continue
                    cm = scores.pop("confusion")
                    scores.pop("reliability")
                    row.update(scores)
                    row.update({"runtime_s": seconds, "n_warnings": len(caught),
                                "warning": _short(caught[0]) if caught else "", "error": ""})
                    rows.append(row)
                    confusion.append(cm.stack().rename("count").reset_index().assign(
                        world=world, n_dyads=n, method=name, replicate=rep))
                    notes.append(f"{name} F1 {row['macro_f1']:.3f} ({seconds:.1f} s)")
                echo(f"  {world} n={n} rep {rep}: " + ", ".join(notes))
    return _write_worlds(out, prefix, rows, confusion, names, runners, skipped, command,
                         seed, n_seeds, started, load_before, echo)


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None


def _write_worlds(out, prefix, rows, confusion, names, runners, skipped, command, seed,
                  n_seeds, started, load_before, echo) -> BenchmarkResults:
    from ._version import __version__
    from .worlds import WORLD_SCORES, describe_worlds, world_table, worlds_summary, worst_worlds

    results = pd.DataFrame(rows)
    for col in ("error", "macro_f1"):
        if col not in results:
            results[col] = "" if col == "error" else np.nan
    confusion_df = _tidy(confusion, ["world", "n_dyads", "method", "replicate", "true",
                                     "predicted", "count"])
    ok = results[results["error"].fillna("") == ""]
    table = world_table(results, (*WORLD_SCORES, "runtime_s")) if len(ok) else pd.DataFrame()
    worst = worst_worlds(results) if len(ok) else pd.DataFrame()
    meta = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": seed,
        "worlds": names,
        "n_seeds": n_seeds,
        "methods": list(runners),
        "skipped": skipped,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "versions": {"alliancetraj": __version__, "python": platform.python_version(),
                     "numpy": np.__version__, "pandas": pd.__version__},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
    }
    summary = worlds_summary(results, table, worst, meta, describe_worlds(meta["worlds"]))
    files = [_write_csv(results, out / f"{prefix}_results.csv"),
             _write_csv(confusion_df, out / f"{prefix}_confusion.csv")]
    if len(table):
        files += [_write_csv(table, out / f"{prefix}_table.csv"),
                  _write_csv(worst, out / f"{prefix}_worst.csv")]
    path = out / f"{prefix}_summary.md"
    path.write_text(summary, encoding="utf-8")
    files.append(path)
    path = out / f"{prefix}_meta.json"
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    files.append(path)
    echo(f"wrote {len(files)} files to {out}/ in {meta['wall_seconds']:.0f} s "
         f"(command: {command})")
    return BenchmarkResults(results=results, confusion=confusion_df,
                            reliability=pd.DataFrame(), runtime=pd.DataFrame(),
                            summary=summary, files=files, skipped=skipped)
