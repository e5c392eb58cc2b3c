"""Benchmark of the exact change-point engine (issue 3): speed, memory, recovery.

Writes ``benchmarks/results/exact_benchmark.{json,md}``.

    nice python benchmarks/bench_exact.py            # full: 100k dyads x 20 sessions
    nice python benchmarks/bench_exact.py --quick    # small sizes, for a smoke run

Each timing runs in a fresh subprocess so that its peak resident memory (ru_maxrss)
is its own. Times are medians over repeats; the machine is shared and noisy, so the
load average is recorded next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"

TIMING_CODE = r"""
import json, resource, sys, time, warnings
import numpy as np
import alliancetraj as at
n, fixed = int(sys.argv[1]), sys.argv[2] == "fixed"
cohort = at.simulate_cohort(n, seed=11, n_sessions=20)
frame = at.load_sessions(cohort.sessions)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hyper = None
if fixed:
    small = at.simulate_cohort(2000, seed=12, n_sessions=20)
    hyper = at.classify(small.sessions, progress=False).hyperparameters
t0 = time.perf_counter()
res = at.classify(frame, hyperparameters=hyper, progress=False)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
acc = float((res.labels.astype(str) == cohort.truth.loc[res.dyads, "true_class"].astype(str)).mean())
print(json.dumps({"n_dyads": n, "mode": "fixed" if fixed else "empirical_bayes", "seconds": dt,
                  "peak_rss_mb": peak / 1024, "rss_before_mb": base / 1024, "accuracy": acc}))
"""


def timed(n: int, mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", TIMING_CODE, str(n), mode],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def macro_f1(truth: np.ndarray, pred: np.ndarray, k: int = 4) -> float:
    f1 = []
    for c in range(k):
        tp = np.sum((pred == c) & (truth == c))
        fp = np.sum((pred == c) & (truth != c))
        fn = np.sum((pred != c) & (truth == c))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1))


def ece(p: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == truth
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(conf[which == b].mean() - correct[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def recovery(n_dyads: int, seeds: list[int]) -> list[dict]:
    import alliancetraj as at
    from alliancetraj.models import exact as ex

    scenarios = {
        "well specified": {"scale": None, "resolution": None},
        "realistic defaults (ceiling, 1/12 steps)": {},
        "AR(1) 0.3": {"ar1": 0.3},
        "t(4) residuals": {"df": 4},
        "ceiling (level 4.3)": {"level": 4.3},
        "20% missing sessions": {"missing": 0.2},
    }
    rows = []
    for name, kw in scenarios.items():
        for seed in seeds:
            cohort = at.simulate_cohort(n_dyads, seed=seed, n_sessions=(8, 20), **kw)
            res = at.classify(cohort.sessions, progress=False)
            truth = cohort.truth.loc[res.dyads]
            codes = truth["true_class"].cat.codes.to_numpy()
            pred = res.labels.cat.codes.to_numpy()
            p = res.probabilities.to_numpy()
            hit = (pred == codes) & np.isin(codes, [2, 3])
            dr = (res.changepoints["rupture_session"].to_numpy() - truth["rupture_session"]
                  .to_numpy())[hit]
            rows.append({"scenario": name, "seed": seed, "accuracy": float(np.mean(pred == codes)),
                         "macro_f1": macro_f1(codes, pred), "ece": ece(p, codes),
                         "rupture_exact": float(np.mean(dr == 0)),
                         "rupture_within_1": float(np.mean(np.abs(dr) <= 1))})
    # drawn from the model itself: calibration must hold
    for seed in seeds:
        res0 = at.classify(at.simulate_cohort(1000, seed=seed).sessions, progress=False)
        h = ex.ExactHyperparameters.from_dict(res0.hyperparameters)
        sessions, truth = ex.sample_prior_predictive(h, n_dyads, n_sessions=(8, 20), seed=seed)
        res = at.classify(sessions, hyperparameters=h, fit_class_probs=False, progress=False)
        codes = truth.loc[res.dyads, "true_class"].cat.codes.to_numpy()
        pred = res.labels.cat.codes.to_numpy()
        rows.append({"scenario": "drawn from the model (fixed priors)", "seed": seed,
                     "accuracy": float(np.mean(pred == codes)),
                     "macro_f1": macro_f1(codes, pred),
                     "ece": ece(res.probabilities.to_numpy(), codes),
                     "rupture_exact": np.nan, "rupture_within_1": np.nan})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sizes = [2_000, 5_000, 10_000] if args.quick else [25_000, 50_000, 100_000]
    repeats = 1 if args.quick else args.repeats
    started = time.time()
    timings = []
    for mode in ("fixed", "empirical_bayes"):
        for n in sizes:
            runs = [timed(n, mode) for _ in range(repeats)]
            secs = sorted(r["seconds"] for r in runs)
            timings.append({**runs[0], "seconds": float(np.median(secs)),
                            "seconds_all": secs,
                            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                            "load_avg_1min": os.getloadavg()[0]})
            print(timings[-1], flush=True)
    n_rec = 400 if args.quick else 1000
    seeds = [1] if args.quick else [1, 2, 3]
    rows = recovery(n_rec, seeds)
    import pandas as pd

    rec = pd.DataFrame(rows)
    summary = rec.groupby("scenario", sort=False)[
        ["accuracy", "macro_f1", "ece", "rupture_exact", "rupture_within_1"]].agg(["median", "min",
                                                                                  "max"])
    ref = summary.loc["well specified", ("macro_f1", "median")]
    drops = {s: float(ref - summary.loc[s, ("macro_f1", "median")]) for s in summary.index}
    # per-dyad PyMC NUTS reference: about 5 s per dyad after compilation (issue 3)
    largest = [t for t in timings if t["n_dyads"] == sizes[-1]]
    ratio = {t["mode"]: 5.0 * t["n_dyads"] / t["seconds"] for t in largest}
    result = {
        "command": "nice python benchmarks/bench_exact.py" + (" --quick" if args.quick else ""),
        "timings": timings,
        "per_1000_dyads_seconds": {t["mode"]: 1000 * t["seconds"] / t["n_dyads"] for t in largest},
        "speedup_vs_pymc_nuts_5s_per_dyad": ratio,
        "recovery": rows,
        "macro_f1_drop_vs_well_specified": drops,
        "wall_seconds": time.time() - started,
        "cpu_count": os.cpu_count(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    name = "exact_benchmark_quick" if args.quick else "exact_benchmark"
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2, default=float))
    lines = [f"# Exact engine benchmark\n\nCommand: `{result['command']}` "
             f"({os.cpu_count()} CPUs; load average at each timing in the table).\n",
             "## Speed and memory (20 sessions per dyad; median of repeats)\n",
             "| mode | dyads | seconds (median) | all runs | peak RSS (MB) | load avg |",
             "| --- | ---: | ---: | --- | ---: | ---: |"]
    for t in timings:
        lines.append(f"| {t['mode']} | {t['n_dyads']:,} | {t['seconds']:.2f} | "
                     f"{', '.join(f'{s:.1f}' for s in t['seconds_all'])} | "
                     f"{t['peak_rss_mb']:.0f} | {t['load_avg_1min']:.1f} |")
    lines += ["", "Speed-up against per-dyad PyMC NUTS at ~5 s per dyad: " +
              ", ".join(f"{k}: {v:,.0f}x" for k, v in ratio.items()), "",
              f"## Recovery ({n_rec} dyads, seeds {seeds}; median [min, max])\n",
              "| scenario | accuracy | macro-F1 | ECE | rupture exact | rupture ±1 | macro-F1 drop |",
              "| --- | --- | --- | --- | --- | --- | ---: |"]
    for s in summary.index:
        def cell(col, s=s):
            med, lo, hi = (summary.loc[s, (col, k)] for k in ("median", "min", "max"))
            return "–" if np.isnan(med) else f"{med:.3f} [{lo:.3f}, {hi:.3f}]"
        lines.append(f"| {s} | {cell('accuracy')} | {cell('macro_f1')} | {cell('ece')} | "
                     f"{cell('rupture_exact')} | {cell('rupture_within_1')} | {drops[s]:+.3f} |")
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {OUT / name}.json and .md")


if __name__ == "__main__":
    main()
