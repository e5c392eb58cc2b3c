"""Benchmark of the per-dyad posterior predictive checks (``alliancetraj.fit_checks``, issue 18).

Writes ``benchmarks/results/fit_checks.md`` (and ``fit_checks.csv``, one row per world).

    nice python benchmarks/bench_fit_checks.py              # worlds at 300 dyads, 2 seeds
    nice python benchmarks/bench_fit_checks.py --quick      # 3 worlds, 150 dyads, 1 seed

Measured:

timing
    seconds of ``fit_checks`` (200 draws, 400 calibration dyads) on a 400-dyad
    ``balanced_wai`` cohort, the median of ``--repeats`` runs; the load average is
    recorded (the machine is shared).
model dyads
    dyads drawn from the model itself (``sample_prior_predictive`` with the
    hyperparameters fitted to a ``balanced_wai`` cohort, 10-20 sessions), classified
    with those hyperparameters fixed: the share flagged (expected <= ~3%) and the share
    of each calibrated p-value below 0.05 (expected ~5%).
worlds
    per world (``simulate_world``, the exact engine with empirical Bayes): the share of
    dyads flagged, per statistic (calibrated p < 0.01), and among misclassified and
    correctly classified dyads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj._markdown import frame_table
from alliancetraj.models.changepoint.checks import STATISTICS
from alliancetraj.models.changepoint.predictive import sample_prior_predictive
from alliancetraj.models.changepoint.spec import Hyperparameters
from alliancetraj.worlds import WORLDS, simulate_world

RESULTS = Path(__file__).resolve().parent / "results"


def _classify(sessions, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # small-cohort and excluded-dyad warnings
        return at.classify(sessions, method="exact", **kw)


def _rates(ch: pd.DataFrame, cut: float) -> dict[str, float]:
    return {name: float((ch[f"pcal_{name}"] < cut).mean()) for name in STATISTICS}


def timing(repeats: int) -> tuple[float, list[float]]:
    cohort = simulate_world("balanced_wai", 400, seed=1)
    res = _classify(cohort.sessions)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        at.fit_checks(cohort.sessions, res, seed=r)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def model_dyads(n: int) -> dict[str, float]:
    fitted = _classify(simulate_world("balanced_wai", 300, seed=1).sessions)
    h = Hyperparameters.from_dict(fitted.hyperparameters)
    sessions, _ = sample_prior_predictive(h, n, (10, 20), seed=2)
    res = _classify(sessions, hyperparameters=h, fit_class_probs=False)
    ch = at.fit_checks(sessions, res, seed=0)
    out = {"dyads": str(n), "flagged": float(ch["misfit"].mean())}
    out.update({f"pcal_{k} < 0.05": v for k, v in _rates(ch, 0.05).items()})
    out.update({f"p_{k} < 0.05 (raw)": float((ch[f"p_{k}"] < 0.05).mean()) for k in STATISTICS})
    return out


def worlds(names, n_dyads: int, seeds) -> pd.DataFrame:
    rows = []
    for name in names:
        for seed in seeds:
            cohort = simulate_world(name, n_dyads, seed=seed)
            res = _classify(cohort.sessions)
            ch = at.fit_checks(cohort.sessions, res, seed=seed)
            truth = cohort.truth["true_class"].astype(str).reindex(ch.index)
            wrong = (ch["class"].astype(str) != truth).to_numpy()
            row = {"world": name, "seed": seed, "dyads": len(ch),
                   "flagged": ch["misfit"].mean(),
                   **{f"{k} flag": v for k, v in _rates(ch, 0.01).items()},
                   "misclassified": wrong.mean(),
                   "flagged (misclassified)": ch["misfit"][wrong].mean(),
                   "flagged (correct)": ch["misfit"][~wrong].mean()}
            rows.append(row)
            print(name, seed, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)},
                  flush=True)
    per_seed = pd.DataFrame(rows)
    table = per_seed.drop(columns="seed").groupby("world", sort=False).mean().round(3)
    return table.astype({"dyads": int})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-dyads", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    names = ["balanced_wai", "ar1_wai", "heavy_tails"] if args.quick else list(WORLDS)
    n_dyads = 150 if args.quick else args.n_dyads
    seeds = range(1, 2 if args.quick else args.seeds + 1)

    med, times = timing(1 if args.quick else args.repeats)
    print(f"fit_checks on 400 dyads: median {med:.2f} s ({[round(t, 2) for t in times]})")
    model = model_dyads(150 if args.quick else 400)
    print("model dyads", model)
    table = worlds(names, n_dyads, seeds)
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "fit_checks.csv")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    text = [
        "# Per-dyad posterior predictive checks (`alliancetraj.fit_checks`)",
        "",
        f"Command: `nice python benchmarks/bench_fit_checks.py{' --quick' if args.quick else ''}`"
        f" (load average {load}; alliancetraj {at.__version__}).",
        "",
        f"**Timing**: 400 `balanced_wai` dyads, 200 draws, 400 calibration dyads: median "
        f"{med:.2f} s over {len(times)} runs ({', '.join(f'{t:.2f}' for t in times)} s).",
        "",
        f"**Dyads drawn from the model** ({model['dyads']}, hyperparameters fitted to "
        "`balanced_wai`, fixed): share flagged and share of p-values below 0.05 "
        "(calibrated: expected ~0.05; raw posterior predictive p-values are conservative).",
        "",
        frame_table(pd.DataFrame([model]).round(3)),
        "",
        f"**Worlds** ({n_dyads} dyads, exact engine with empirical Bayes, means over "
        f"{len(seeds)} seed(s)): share flagged (any calibrated p < 0.01), per statistic, and "
        "among misclassified and correctly classified dyads.",
        "",
        frame_table(table.reset_index()),
        "",
    ]
    (RESULTS / "fit_checks.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
