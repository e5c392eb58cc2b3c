"""Exact engine on the independent worlds under its public options (issue 18, part 2).

Public API only: ``alliancetraj.classify(method="exact", ...)`` with the options a user
has today (empirical-Bayes priors, fixed priors in noise units, the class-share fit,
``max_rupture_length``, ``u_margin``), scored per world by
:func:`alliancetraj.worlds.score_world` and on :func:`alliancetraj.simulate_cohort`.
It measures how far the current model can be pushed without changing it; the research
engine behind ``results/robustness_research.md`` (which changes the model) is kept as
plain text in ``results/robustness_research_code/``.

Writes ``<tag>.csv`` (one row per variant x world x replicate) and ``<tag>.md``
(per variant: worst-world macro-F1, lowest linear recall, worst ECE, simulate_cohort
macro-F1) to ``--out``.

Examples::

    nice python benchmarks/diag_robustness.py --n-dyads 400 --seeds 2
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj.metrics import score_result
from alliancetraj.worlds import WORLDS, score_world, simulate_world, world_seed


def noise_sd(sessions: pd.DataFrame) -> float:
    """Median over dyads of the successive-difference noise SD (robust to steps)."""
    frame = sessions.sort_values(["dyad", "session"])
    diff = frame.groupby("dyad")["score"].diff()
    var = (diff**2).groupby(frame["dyad"]).mean() / 2.0
    return float(np.sqrt(np.median(var.dropna())))


def fixed_priors(sessions: pd.DataFrame, size_sd: float, spread: float) -> dict:
    """Fixed priors with depth and amplitude centred ``size_sd`` noise SDs from zero.

    Variances are in units of the residual variance (the engine's convention), so a
    prior SD of ``spread`` noise SDs is ``spread**2``.
    """
    sd = noise_sd(sessions)
    scores = sessions["score"]
    return {
        "noise_shape": 2.0, "noise_scale": sd**2, "level_mean": float(scores.mean()),
        "level_var": float(100.0 * scores.var() / sd**2), "slope_mean": 0.0,
        "slope_var": 0.25, "depth_mean": size_sd * sd, "depth_var": spread**2,
        "amplitude_mean": size_sd * sd, "amplitude_var": spread**2,
        "class_probs": (0.25, 0.25, 0.25, 0.25),
    }


VARIANTS = {
    "eb_default": lambda s: {},
    "eb_no_share_fit": lambda s: {"fit_class_probs": False},
    "eb_max_len_6": lambda s: {"max_rupture_length": 6},
    "fixed_mean3sd_sd1": lambda s: {"hyperparameters": fixed_priors(s, 3.0, 1.0)},
    "fixed_mean4sd_sd1.5": lambda s: {"hyperparameters": fixed_priors(s, 4.0, 1.5)},
    "fixed_mean4sd_sd1.5_no_share_fit": lambda s: {
        "hyperparameters": fixed_priors(s, 4.0, 1.5), "fit_class_probs": False},
}


def run(n_dyads: int, seeds: int, base: int, variants: list[str]) -> pd.DataFrame:
    rows = []
    cohorts = [(w, r, simulate_world(w, n_dyads, seed=world_seed(base, w, r)))
               for w in WORLDS for r in range(seeds)]
    cohorts += [("simulate_cohort", r, at.simulate_cohort(n_dyads=n_dyads, seed=base + r + 1))
                for r in range(seeds)]
    for name in variants:
        for world, rep, cohort in cohorts:
            options = VARIANTS[name](cohort.sessions)
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = at.classify(cohort.sessions, method="exact", **options)
            seconds = time.perf_counter() - started
            score = score_world if world != "simulate_cohort" else score_result
            scores = score(res, cohort.truth)
            rows.append({"variant": name, "world": world, "replicate": rep, "seconds": seconds,
                         **{k: v for k, v in scores.items() if np.isscalar(v)}})
        print(f"{name}: done", flush=True)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    out = []
    for name, g in frame.groupby("variant", sort=False):
        worlds = g[g.world != "simulate_cohort"].groupby("world")[
            ["macro_f1", "recall_linear", "ece"]].mean()
        sim = g[g.world == "simulate_cohort"]["macro_f1"].mean()
        out.append({"variant": name,
                    "worst macro-F1 (world)": f"{worlds.macro_f1.min():.3f} "
                                              f"({worlds.macro_f1.idxmin()})",
                    "lowest linear recall (world)": f"{worlds.recall_linear.min():.2f} "
                                                    f"({worlds.recall_linear.idxmin()})",
                    "worst ECE (world)": f"{worlds.ece.max():.3f} ({worlds.ece.idxmax()})",
                    "mean macro-F1": f"{worlds.macro_f1.mean():.3f}",
                    "simulate_cohort macro-F1": f"{sim:.3f}"})
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-dyads", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="diag_robustness")
    args = parser.parse_args(argv)
    raw = argv if argv is not None else sys.argv[1:]
    frame = run(args.n_dyads, args.seeds, args.seed, args.variants)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{args.tag}.csv", index=False)
    table = summarise(frame)
    header = "| " + " | ".join(table.columns) + " |\n|" + " --- |" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(map(str, r)) + " |\n" for r in table.itertuples(index=False))
    text = (f"# Exact engine, public options, on the independent worlds\n\n"
            f"`python benchmarks/diag_robustness.py {shlex.join(raw)}`; {args.n_dyads} dyads, "
            f"{args.seeds} cohorts per world (means over them)\n\n{header}{body}")
    (out / f"{args.tag}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
