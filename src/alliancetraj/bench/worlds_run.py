"""``run_worlds``: every method on the independent worlds of :mod:`alliancetraj.worlds`."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_int
from .._version import __version__
from .measure import (
    BenchmarkResults,
    _call_quietly,
    _load_average,
    _resolve_methods,
    _short,
    _tidy,
    _timed,
    _write_csv,
    _write_json,
    _write_text,
)

__all__ = ["run_worlds"]


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
    from ..worlds import WORLDS, resolve_worlds, score_world, simulate_world, world_seed

    names = resolve_worlds(worlds)
    seed = check_int("run_worlds", "seed", seed, low=0)
    sizes = [None] if n_dyads is None else (
        [n_dyads] if isinstance(n_dyads, (int, np.integer)) else list(n_dyads))
    sizes = [check_int("run_worlds", "n_dyads", v, low=1, allow_none=True) for v in sizes]
    n_seeds = check_int("run_worlds", "n_seeds", n_seeds, low=1, allow_none=True)
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


def _write_worlds(out, prefix, rows, confusion, names, runners, skipped, command, seed,
                  n_seeds, started, load_before, echo) -> BenchmarkResults:
    from ..worlds import WORLD_SCORES, describe_worlds, world_table, worlds_summary, worst_worlds

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
    files.append(_write_text(summary, out / f"{prefix}_summary.md"))
    files.append(_write_json(meta, out / f"{prefix}_meta.json"))
    echo(f"wrote {len(files)} files to {out}/ in {meta['wall_seconds']:.0f} s "
         f"(command: {command})")
    return BenchmarkResults(results=results, confusion=confusion_df,
                            reliability=pd.DataFrame(), runtime=pd.DataFrame(),
                            summary=summary, files=files, skipped=skipped)
