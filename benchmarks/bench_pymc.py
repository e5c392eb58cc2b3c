"""Benchmark of ``classify(method="pymc")`` (the collapsed hierarchical mixture).

Times compilation and sampling separately, for a ladder of cohort sizes, and records
the machine load (the development machine is shared). Writes
``benchmarks/results/pymc_bench.csv``, ``.json`` and ``.md``.

    nice python benchmarks/bench_pymc.py                       # 500 dyads x 20 sessions, 4 x 1000
    nice python benchmarks/bench_pymc.py --dyads 50 100 --draws 300 --tune 300
    nice python benchmarks/bench_pymc.py --grad-only --dyads 50 100 200 500   # cost per gradient
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj.errors import SamplerWarning
from alliancetraj.models import pymc_mixture as pmm
from alliancetraj.models.changepoint.spec import standardise_mapping

RESULTS = Path(__file__).resolve().parent / "results"


def grad_cost(n_dyads: int, n_sessions: int, seed: int) -> dict:
    """Time one logp+gradient evaluation as the sampler calls it, and the kernel alone.

    The logp+gradient function is compiled with PyTensor's C back end, as
    :func:`alliancetraj.models.pymc_nutpie.compile_pymc_model_c` does for nutpie; the
    kernel (:func:`alliancetraj.models.changepoint.kernels.class_evidence_kernel`) is timed with
    and without its gradient. Medians of 7 repeats.
    """
    import pytensor
    from pymc.pytensorf import compile as compile_pymc

    from alliancetraj.models import pymc_kernel as pk
    from alliancetraj.models.changepoint.kernels import THETA, class_evidence_kernel

    cohort = at.simulate_cohort(n_dyads=n_dyads, n_sessions=n_sessions, seed=seed)
    frame = at.load_sessions(cohort.sessions, min_sessions=pmm.MIN_SESSIONS)
    data = pmm.prepare_cohort(frame)
    model = pmm.build_cohort_model(data)
    t0 = time.perf_counter()
    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    logp = model.logp()
    with model:
        fn = compile_pymc(values, [logp, *pytensor.grad(logp, values)])
    x0 = model.initial_point()
    args = [x0[v.name] for v in values]
    fn(*args)
    compile_s = time.perf_counter() - t0

    def median_ms(f, reps: int = 30) -> float:
        times = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(reps):
                f()
            times.append((time.perf_counter() - t) / reps)
        return 1000 * float(np.median(times))

    inputs = tuple(pk.kernel_inputs(data.stats, data.noise_shape).values())
    h = standardise_mapping(at.classify(cohort.sessions, method="exact", seed=seed,
                                        progress=False).hyperparameters, data.loc, data.sd)
    theta = np.array([h[k] for k in THETA])
    per = median_ms(lambda: fn(*args))
    n_cfg = int(data.stats.u_ok.sum() + data.stats.v_ok.sum() + data.stats.un_ok.sum()) + n_dyads
    return {"n_dyads": n_dyads, "n_sessions": n_sessions, "configurations": n_cfg,
            "logp_grad_compile_s": compile_s, "logp_grad_ms": per,
            "kernel_grad_ms": median_ms(lambda: class_evidence_kernel(theta, *inputs, True)),
            "kernel_value_ms": median_ms(lambda: class_evidence_kernel(theta, *inputs, False)),
            "ns_per_configuration": 1e6 * per / n_cfg, "load_avg_1min": os.getloadavg()[0]}


def run(n_dyads: int, n_sessions: int, chains: int, draws: int, tune: int, seed: int) -> dict:
    cohort = at.simulate_cohort(n_dyads=n_dyads, n_sessions=n_sessions, seed=seed)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        res = at.classify(cohort.sessions, method="pymc", chains=chains, draws=draws, tune=tune,
                          seed=seed, progress=False)
    wall = time.perf_counter() - t0
    d = res.diagnostics
    truth = cohort.truth.loc[res.dyads, "true_class"].astype(str).to_numpy()
    return {
        "n_dyads": n_dyads, "n_sessions": n_sessions, "chains": chains, "draws": draws,
        "tune": res.settings["tune"], "sampler": d.get("sampler"), "wall_s": wall,
        "compile_s": d.get("compile_seconds"), "sampling_s": d.get("sampling_seconds"),
        "dyad_posterior_s": d.get("dyad_posterior_seconds"),
        "mean_tree_size": d.get("mean_tree_size"),
        "divergences": d.get("divergences"), "r_hat_max": d.get("r_hat_max"),
        "ess_bulk_min": d.get("ess_bulk_min"), "ess_tail_min": d.get("ess_tail_min"),
        "other_s": wall - sum(d.get(k) or 0.0 for k in (
            "compile_seconds", "sampling_seconds", "dyad_posterior_seconds")),
        "accuracy": float(np.mean(res.labels.astype(str).to_numpy() == truth)),
        # only the package's own SamplerWarning (record=True also catches unrelated warnings)
        "sampler_warning": any(issubclass(w.category, SamplerWarning) for w in caught),
        "load_avg_start": load0,
        "load_avg_end": os.getloadavg()[0], "cpus": os.cpu_count(),
    }


#: True population parameters of the coverage study (scores on a standardised-like scale).
TRUTH = {
    "noise_shape": 6.0, "noise_scale": 1.25, "level_mean": 0.0, "level_var": 2.0,
    "slope_mean": 0.02, "slope_var": 0.004, "depth_mean": 1.2, "depth_var": 2.0,
    "amplitude_mean": 1.2, "amplitude_var": 2.0, "class_probs": [0.4, 0.2, 0.2, 0.2],
}


def coverage(n_rep: int, n_dyads: int, n_sessions: int, chains: int, draws: int, tune: int,
             seed: int, level: float = 0.9, partial: Path | None = None) -> pd.DataFrame:
    """Coverage of posterior intervals of the population parameters over repeated cohorts.

    Cohorts are simulated from the model itself (``pymc_design.sample_prior_predictive``)
    with the population parameters ``TRUTH`` and one session pattern, so one compiled
    model (scores in ``pm.Data``) is refitted with ``nutpie``'s ``with_data``; the noise
    shape is fixed at its true value. Scores are used unstandardised (loc 0, sd 1).
    """
    import nutpie

    from alliancetraj.models import pymc_design as pdz

    pattern = [np.arange(1, n_sessions + 1)] * n_dyads
    rows = []
    compiled = None
    names = [k for k in pmm.HYPERPARAMETERS if k != "noise_shape"]
    for r in range(n_rep):
        sessions, truth = pdz.sample_prior_predictive(pattern, TRUTH, seed=seed + r)
        frame = at.load_sessions(sessions)
        stats = pdz.cohort_stats(frame, loc=0.0, sd=1.0)
        if compiled is None:
            data = pmm.CohortData(stats=stats, loc=0.0, sd=1.0, noise_shape=TRUTH["noise_shape"],
                                  span=float(n_sessions - 1), noise_var=0.25)
            model = pmm.build_cohort_model(data, mutable_scores=True)
            t0 = time.perf_counter()
            compiled = nutpie.compile_pymc_model(model, backend="numba")
            compile_s = time.perf_counter() - t0
        fit = compiled.with_data(**{k: getattr(stats, k) for k in pmm.SCORE_MOMENTS})
        t0 = time.perf_counter()
        idata = nutpie.sample(fit, draws=draws, tune=tune, chains=chains, seed=seed + r,
                              progress_bar=False, save_warmup=False)
        sample_s = time.perf_counter() - t0
        post = idata.posterior
        q = ((1 - level) / 2, (1 + level) / 2)
        share = truth["true_class"].value_counts(normalize=True).reindex(at.CLASSES).fillna(0)
        for name in names:
            vals = post[name].to_numpy().reshape(-1, *post[name].shape[2:])
            true = np.atleast_1d(np.asarray(TRUTH[name], dtype=float))
            vals = vals.reshape(vals.shape[0], -1)
            for j in range(vals.shape[1]):
                lo, hi = np.quantile(vals[:, j], q)
                label = name if vals.shape[1] == 1 else f"{name}[{at.CLASSES[j]}]"
                rows.append({"rep": r, "parameter": label, "truth": true[j], "low": lo,
                             "high": hi, "mean": vals[:, j].mean(),
                             "covered": bool(lo <= true[j] <= hi),
                             "sample_share": float(share.iloc[j]) if name == "class_probs"
                             else np.nan,
                             "divergences": int(idata.sample_stats["diverging"].sum()),
                             "compile_s": compile_s, "sampling_s": sample_s})
        print(f"coverage rep {r}: {sample_s:.1f} s", flush=True)
        if partial is not None:  # rows so far, so that a stopped study keeps its replicates
            pd.DataFrame(rows).to_csv(partial, index=False)
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dyads", type=int, nargs="+", default=[500])
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=None,
                   help="tuning steps per chain (default: the sampler's own, 400 for nutpie)")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--grad-only", action="store_true",
                   help="only time one logp+gradient evaluation per cohort size")
    p.add_argument("--tag", default="")
    p.add_argument("--coverage", type=int, default=0, metavar="N_REP",
                   help="coverage study over N_REP simulated cohorts (of --dyads[0] dyads)")
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.coverage:
        stem = "pymc_coverage" + (f"_{args.tag}" if args.tag else "")
        df = coverage(args.coverage, args.dyads[0], args.sessions, args.chains, args.draws,
                      args.tune, args.seed, partial=RESULTS / f"{stem}_partial.csv")
        df.to_csv(RESULTS / f"{stem}.csv", index=False)
        (RESULTS / f"{stem}_partial.csv").unlink(missing_ok=True)
        summ = df.groupby("parameter", sort=False).agg(
            coverage=("covered", "mean"), n=("covered", "size"), truth=("truth", "first"),
            mean_estimate=("mean", "mean"), mean_width=("high", "mean"))
        summ["mean_width"] = summ["mean_width"] - df.groupby("parameter", sort=False)["low"].mean()
        cmd = _command(argv)
        overall = df["covered"].mean()
        (RESULTS / f"{stem}.md").write_text(
            f"# Coverage of 90% posterior intervals (PyMC mixture)\n\nCommand: `{cmd}`\n\n"
            f"Overall coverage {overall:.3f} over {len(df)} intervals "
            f"({df['rep'].nunique()} cohorts); divergences total "
            f"{int(df.groupby('rep')['divergences'].first().sum())}; load average "
            f"{os.getloadavg()[0]:.1f}.\n\n" + summ.to_string() + "\n")
        print(summ.to_string())
        print(f"overall coverage {overall:.3f}; wrote {RESULTS / stem}.csv/.md")
        return
    rows = []
    for n in args.dyads:
        row = grad_cost(n, args.sessions, args.seed) if args.grad_only else \
            run(n, args.sessions, args.chains, args.draws, args.tune, args.seed)
        print(row, flush=True)
        rows.append(row)
    df = pd.DataFrame(rows)
    stem = "pymc_grad_cost" if args.grad_only else "pymc_bench"
    if args.tag:
        stem += f"_{args.tag}"
    df.to_csv(RESULTS / f"{stem}.csv", index=False)
    cmd = _command(argv)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"command": cmd, "cpus": os.cpu_count(), "rows": df.to_dict(orient="records")},
        indent=2, default=str) + "\n")
    (RESULTS / f"{stem}.md").write_text(
        f"# PyMC mixture benchmark\n\nCommand: `{cmd}`\n\n" + df.to_markdown(index=False)
        + "\n" if _has_tabulate() else f"# PyMC mixture benchmark\n\nCommand: `{cmd}`\n\n"
        + df.to_string(index=False) + "\n")
    print(f"wrote {RESULTS / stem}.csv/.json/.md  ({cmd})")


def _command(argv) -> str:
    """The command line that made the figures (``nice`` when the process was niced)."""
    prefix = "nice " if os.nice(0) > 0 else ""
    return prefix + " ".join([".venv/bin/python", "benchmarks/bench_pymc.py",
                              *(argv or sys.argv[1:])])


def _has_tabulate() -> bool:
    import importlib.util

    return importlib.util.find_spec("tabulate") is not None


if __name__ == "__main__":
    main()
