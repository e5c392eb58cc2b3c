"""``run_benchmark``: every method on the grid, the runtime scan, and the files written."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_choice, check_int
from .._version import __version__
from ..metrics import DEFAULT_BINS, score_result
from ..results import CLASSES
from ..simulate import simulate_cohort
from .figures import _write_figures
from .grid import CONDITIONS, FULL_GRID, NOISE_LEVELS, QUICK_GRID, BenchmarkGrid
from .measure import (
    BenchmarkResults,
    Runner,
    _call_quietly,
    _cell_seed,
    _resolve_methods,
    _short,
    _tidy,
    _timed,
    _traced_peak_mib,
    _write_csv,
    _write_json,
    _write_text,
)
from .summary import _summary_markdown
from .worlds_run import run_worlds

__all__ = ["RESULT_COLUMNS", "run_benchmark"]

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
    check_choice("run_benchmark", "memory", memory, ("first", "all", "scan", "none"))
    seed = check_int("run_benchmark", "seed", seed, low=0)
    n_dyads = check_int("run_benchmark", "n_dyads", n_dyads, low=1, allow_none=True)
    n_seeds = check_int("run_benchmark", "n_seeds", n_seeds, low=1, allow_none=True)
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
    files.append(_write_text(summary, out / f"{prefix}_summary.md"))
    files.append(_write_json(meta, out / f"{prefix}_meta.json"))
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
