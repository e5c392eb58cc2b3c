"""The Markdown summary of a benchmark run (medians with IQR or min–max)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._markdown import fmt_number, fmt_seconds, markdown_table
from ..metrics import DEFAULT_BINS
from ..results import CLASSES
from .grid import CONDITIONS, DEFAULT_METHODS, BenchmarkGrid, describe_grid


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


_SUMMARY_METRICS = (
    ("accuracy", "accuracy", fmt_number),
    ("macro_f1", "macro-F1", fmt_number),
    ("brier", "Brier", fmt_number),
    ("ece", "ECE", fmt_number),
    ("rupture_within_1", "rupture ±1", fmt_number),
    ("repair_within_1", "repair ±1", fmt_number),
    ("runtime_per_1000_s", "s / 1000 dyads", fmt_seconds),
    ("peak_memory_mib", "peak MiB", fmt_seconds),
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
    return markdown_table(header, rows)


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
        _grouped_table(results, ["method"], [(f"f1_{c}", f"F1 {c}", fmt_number) for c in CLASSES], "iqr"),
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
                ("classwise_ece", "classwise ECE", fmt_number),
                ("rupture_exact", "rupture exact", fmt_number),
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
            seconds = [fmt_seconds(wide.loc[m].get(n, np.nan)) for n in sizes]
            peaks = [fmt_seconds(mem.loc[m].get(n, np.nan)) for n in sizes]
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
            markdown_table(["method", "", *(f"{n} dyads" for n in sizes)], rows),
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
