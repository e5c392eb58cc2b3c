"""Cross-check of the exact engine against the same models sampled explicitly in PyMC.

A handful of simulated dyads, hyperparameters fixed. The exact engine
(``classify(method="exact", hyperparameters=..., fit_class_probs=False)``) gives exact
class probabilities; ``classify(method="pymc", model="explicit", ...)`` samples every
dyad's level, slope, depth/amplitude and noise per class with NUTS, marginalises the
change points and the class by log-sum-exp, and Rao-Blackwellises. Differences are
compared with the Monte Carlo standard errors. The within-class change-point
posteriors are compared with the closed form (``pymc_design``, which equals the
engine's evidence to rounding) by total-variation distance, and the reported rupture
sessions with the engine's ``result.changepoints``. Also: the collapsed model with the
same fixed hyperparameters (no sampling; must agree to rounding).

Writes ``benchmarks/results/pymc_crosscheck.json`` and ``pymc_crosscheck.md``.

    nice python benchmarks/crosscheck_exact_pymc.py [--dyads 8] [--draws 1000] [--chains 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj.models import pymc_design as pdz
from alliancetraj.models.changepoint.spec import standardise_mapping as _to_standard

RESULTS = Path(__file__).resolve().parent / "results"

#: Fixed hyperparameters (original score scale), close to an empirical-Bayes fit of
#: ``simulate_cohort`` data by the exact engine.
HYPER = {
    "noise_shape": 5.0, "noise_scale": 0.29, "level_mean": 3.46, "level_var": 2.6,
    "slope_mean": 0.027, "slope_var": 0.0039, "depth_mean": 0.89, "depth_var": 0.98,
    "amplitude_mean": 0.9, "amplitude_var": 0.48, "class_probs": [0.37, 0.25, 0.27, 0.11],
}


def crosscheck_sessions(n_dyads: int = 8, seed: int = 7) -> pd.DataFrame:
    """A few dyads of every class, short series (cheap to sample)."""
    cohort = at.simulate_cohort(n_dyads=max(4 * n_dyads, 40), seed=seed, n_sessions=(8, 12))
    truth = cohort.truth["true_class"].astype(str)
    picks = []
    for k in range(n_dyads):
        cls = at.CLASSES[k % 4]
        ids = [d for d in truth.index[truth == cls] if d not in picks]
        picks.append(ids[0])
    return cohort.sessions.loc[cohort.sessions["dyad"].isin(picks)].reset_index(drop=True)


def closed_form_config_probs(frame: pd.DataFrame, hyper: dict, configs) -> dict:
    """P(tau | y, class) from the closed form, ordered as the explicit model's configurations."""
    loc, sd = pdz.standardisation(frame)
    st = pdz.cohort_stats(frame, loc=loc, sd=sd)
    ev = pdz.config_log_evidence(st, _to_standard(hyper, loc, sd))
    out = {}
    for cls in at.CLASSES[1:]:
        rows = []
        for i in range(len(st.dyads)):
            e = ev[cls][i]
            if cls == "u_shaped":
                # the dips are fractions of the dyad's span: match their sessions
                sh = st.first[i] + st.span[i] * st.u_shape
                keys = [tuple(np.round(r, 9)) for r in sh]
                order = [keys.index(tuple(np.round(c, 9))) for c in configs[i][cls]]
            elif cls == "v_shaped":
                keys = list(zip(st.v_rupture.tolist(), st.v_repair.tolist()))
                order = [keys.index(c) for c in configs[i][cls]]
            else:
                keys = list(st.un_rupture)
                order = [keys.index(c) for c in configs[i][cls]]
            w = e[order]
            w = np.exp(w - w.max())
            rows.append(w / w.sum())
        out[cls] = rows
    return out


def crosscheck(n_dyads: int = 8, draws: int = 1000, tune: int = 1000, chains: int = 4,
               seed: int = 7, sampler: str | None = None) -> dict:
    sessions = crosscheck_sessions(n_dyads, seed)
    exact = at.classify(sessions, method="exact", hyperparameters=HYPER, fit_class_probs=False)
    t0 = time.perf_counter()
    expl = at.classify(sessions, method="pymc", model="explicit", hyperparameters=HYPER,
                       draws=draws, tune=tune, chains=chains, seed=seed, progress=False,
                       sampler=sampler)
    wall = time.perf_counter() - t0
    coll = at.classify(sessions, method="pymc", hyperparameters=HYPER, progress=False)
    P_ex = exact.probabilities.loc[expl.dyads].to_numpy()
    P_mc = expl.probabilities.to_numpy()
    se = expl.extras["mc_se"].to_numpy()
    diff = np.abs(P_mc - P_ex)
    z = diff / np.maximum(se, 1e-4)
    frame = at.load_sessions(sessions, min_sessions=4)
    cf = closed_form_config_probs(frame, HYPER, expl.extras["configs"])
    tv = []
    for cls in at.CLASSES[1:]:
        k = at.CLASSES.index(cls)
        for i in range(len(expl.dyads)):
            if P_ex[i, k] >= 0.2 and len(cf[cls][i]):
                tv.append({"dyad": str(expl.dyads[i]), "class": cls, "p_class": float(P_ex[i, k]),
                           "tv": float(0.5 * np.abs(expl.extras["config_probs"][cls][i][
                               :len(cf[cls][i])] - cf[cls][i]).sum())})
    lab = exact.labels.loc[expl.dyads].astype(str)
    same_label = float(np.mean(lab.to_numpy() == expl.labels.astype(str).to_numpy()))
    out = {
        "n_dyads": len(expl.dyads), "draws": draws, "tune": tune, "chains": chains,
        "seed": seed, "sampler": expl.settings["sampler"], "hyperparameters": HYPER,
        "explicit_vs_exact_max_abs_diff": float(diff.max()),
        "explicit_vs_exact_max_z": float(z.max()),
        "mc_se_max": float(se.max()), "mc_se_median": float(np.median(se)),
        "collapsed_vs_exact_max_abs_diff": float(
            np.abs(coll.probabilities.loc[expl.dyads].to_numpy() - P_ex).max()),
        "config_posterior_tv_max": float(max((r["tv"] for r in tv), default=np.nan)),
        "config_posterior_tv": tv, "same_label_share": same_label,
        "divergences": expl.diagnostics.get("divergences"),
        "r_hat_max": expl.diagnostics.get("r_hat_max"),
        "ess_bulk_min": expl.diagnostics.get("ess_bulk_min"),
        "explicit_wall_s": wall, "compile_s": expl.diagnostics.get("compile_seconds"),
        "load_avg_1min": os.getloadavg()[0],
        "probabilities": {"exact": P_ex.round(4).tolist(), "explicit": P_mc.round(4).tolist(),
                          "mc_se": se.round(4).tolist(), "dyads": [str(d) for d in expl.dyads]},
    }
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dyads", type=int, default=8)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    out = crosscheck(args.dyads, args.draws, args.tune, args.chains, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    cmd = "nice python benchmarks/crosscheck_exact_pymc.py " + " ".join(argv or sys.argv[1:])
    out["command"] = cmd
    (RESULTS / "pymc_crosscheck.json").write_text(json.dumps(out, indent=2))
    keys = ["n_dyads", "draws", "chains", "explicit_vs_exact_max_abs_diff",
            "explicit_vs_exact_max_z", "mc_se_max", "collapsed_vs_exact_max_abs_diff",
            "config_posterior_tv_max", "same_label_share", "divergences", "r_hat_max",
            "ess_bulk_min", "explicit_wall_s", "load_avg_1min"]
    lines = ["# Exact engine vs explicit PyMC models", "", f"Command: `{cmd}`", "",
             "| quantity | value |", "| --- | --- |"]
    lines += [f"| {k} | {out[k]:.4g} |" if isinstance(out[k], float) else f"| {k} | {out[k]} |"
              for k in keys]
    (RESULTS / "pymc_crosscheck.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({k: out[k] for k in keys}, indent=2))


if __name__ == "__main__":
    main()
