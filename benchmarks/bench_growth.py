"""Speed of the growth model: GrowthModel settings versus plain statsmodels MixedLM.

Model ``score ~ session + (session | dyad)`` fitted by REML to simulated dyads with
20 sessions each (random intercept and slope, lme4's sleepstudy units: intercept
250 (SD 25), slope 10 (SD 6), residual SD 25). Configurations:

- ``statsmodels_default``: ``MixedLM(y, X, groups, exog_re=X).fit(reml=True)``, raw
  units, identity start, statsmodels' default optimiser chain (bfgs, lbfgs, cg).
- ``statsmodels_tuned``: ``GrowthModel(optimizer="lbfgs")``: statsmodels' own
  optimiser, standardised columns, start from per-dyad least squares.
- ``fast_polished``: ``GrowthModel()`` (default): vectorised profiled REML with
  analytic gradient from the per-dyad least-squares start, then one pass of
  statsmodels' ``MixedLM.loglike`` and ``MixedLM.score`` at the optimum to confirm
  it (``MixedLM.fit`` runs only if statsmodels disagrees).
- ``fast``: ``GrowthModel(polish=False)``: no statsmodels pass.

Times are medians of ``--repeats`` runs (wall clock, single process). The script
writes ``benchmarks/results/growth_benchmark.{json,md}`` and prints the command.

Run:  nice python benchmarks/bench_growth.py [--repeats 3] [--small 2000] [--large 10000]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at

RESULTS = Path(__file__).resolve().parent / "results"


def make_data(n_dyads: int, n_sessions: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cov = np.array([[25.0**2, 0.07 * 25 * 6], [0.07 * 25 * 6, 6.0**2]])
    b = rng.multivariate_normal([250.0, 10.0], cov, size=n_dyads)
    t = np.tile(np.arange(1, n_sessions + 1, dtype=float), n_dyads)
    g = np.repeat(np.arange(n_dyads), n_sessions)
    y = b[g, 0] + b[g, 1] * t + 25.0 * rng.standard_normal(len(t))
    return pd.DataFrame({"dyad": g, "session": t.astype(np.int64), "score": y})


def fit_default(frame: pd.DataFrame) -> dict:
    from statsmodels.regression.mixed_linear_model import MixedLM

    X = np.column_stack([np.ones(len(frame)), frame["session"].to_numpy(float)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = MixedLM(frame["score"].to_numpy(), X, groups=frame["dyad"].to_numpy(), exog_re=X).fit(
            reml=True
        )
    return {
        "fixed": np.asarray(r.fe_params).tolist(),
        "loglik": float(r.llf),
        "sd": np.sqrt(np.diag(r.cov_re)).tolist(),
        "converged": bool(r.converged),
        "warnings": sorted({str(w.message)[:80] for w in caught}),
    }


def fit_growth(frame: pd.DataFrame, **kw) -> dict:
    gm = at.GrowthModel(time="linear", random="slope", reml=True, **kw).fit(frame)
    return {
        "fixed": gm.fixed_effects.tolist(),
        "loglik": gm.loglik,
        "sd": np.sqrt(np.diag(gm.random_effects_cov)).tolist(),
        "converged": gm.converged_,
        "warnings": [],
    }


CONFIGS = {
    "statsmodels_default": fit_default,
    "statsmodels_tuned": lambda f: fit_growth(f, optimizer="lbfgs"),
    "fast_polished": lambda f: fit_growth(f),
    "fast": lambda f: fit_growth(f, polish=False),
}


def timed(name: str, frame: pd.DataFrame, repeats: int) -> dict:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = CONFIGS[name](frame)
        times.append(time.perf_counter() - t0)
    return {
        "config": name,
        "n_dyads": int(frame["dyad"].nunique()),
        "n_obs": len(frame),
        "median_s": float(np.median(times)),
        "times_s": times,
        **out,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--small", type=int, default=2000, help="dyads for the comparison")
    ap.add_argument("--large", type=int, default=10000, help="dyads for the target run")
    args = ap.parse_args(argv)
    command = "python " + " ".join(
        shlex.quote(a)
        for a in ["benchmarks/bench_growth.py", *(sys.argv[1:] if argv is None else argv)]
    )

    rows = []
    small = make_data(args.small, seed=1)
    for name in CONFIGS:
        rows.append(timed(name, small, args.repeats))
        print(f"{name:>20} {args.small:>6} dyads: {rows[-1]['median_s']:.2f} s", flush=True)
    large = make_data(args.large, seed=2)
    for name in ("fast_polished", "fast"):
        rows.append(timed(name, large, args.repeats))
        print(f"{name:>20} {args.large:>6} dyads: {rows[-1]['median_s']:.2f} s", flush=True)

    base = rows[0]
    by = {(r["config"], r["n_dyads"]): r for r in rows}
    ratios = {
        name: base["median_s"] / by[(name, args.small)]["median_s"]
        for name in CONFIGS
        if name != "statsmodels_default"
    }
    agree = {
        name: {
            "max_abs_fixed_diff": float(
                np.max(np.abs(np.subtract(by[(name, args.small)]["fixed"], base["fixed"])))
            ),
            "loglik_diff": by[(name, args.small)]["loglik"] - base["loglik"],
        }
        for name in ratios
    }
    summary = {
        "command": command,
        "model": "score ~ session + (session | dyad), REML, 20 sessions per dyad",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "2 shared CPU cores, other jobs running; run under nice",
        },
        "rows": rows,
        "speedup_vs_statsmodels_default": ratios,
        "agreement_with_statsmodels_default": agree,
        "target": {
            "n_dyads": args.large,
            "limit_s": 30.0,
            "fast_polished_s": by[("fast_polished", args.large)]["median_s"],
            "met": by[("fast_polished", args.large)]["median_s"] <= 30.0,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "growth_benchmark.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "# Growth model speed",
        "",
        f"Command: `{command}`",
        "",
        f"Model: {summary['model']}. Median wall time of {args.repeats} runs; "
        "2 shared CPU cores (other jobs running).",
        "",
        "| configuration | dyads | median s | converged | speed-up vs statsmodels default |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        ratio = (base["median_s"] / r["median_s"]) if r["n_dyads"] == args.small else np.nan
        lines.append(
            f"| {r['config']} | {r['n_dyads']} | {r['median_s']:.2f} | "
            f"{r['converged']} | {ratio:.1f}x |".replace("| nanx |", "| - |")
        )
    lines += ["", "Agreement with the statsmodels default fit (same data):", ""]
    for name, a in agree.items():
        lines.append(
            f"- {name}: largest fixed-effect difference {a['max_abs_fixed_diff']:.2e}, "
            f"log-likelihood difference {a['loglik_diff']:+.2e}"
        )
    if base["warnings"]:
        lines += ["", "statsmodels default warnings: " + "; ".join(base["warnings"])]
    (RESULTS / "growth_benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nWritten by: {command}")


if __name__ == "__main__":
    main()
