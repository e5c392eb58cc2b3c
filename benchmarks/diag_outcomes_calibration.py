"""Calibration of the exact engine's posteriors as BCH uses them (issue #6).

BCH (``relate_outcomes(method="bch")``) builds the classification-error matrix from the
class probabilities, ``D_post[t, s] = sum_i p_it 1[modal_i = s] / sum_i p_it``; it is
only right when the probabilities are calibrated. This script pools many dyads of a
coverage-study scenario, classifies them with priors from empirical Bayes on a pilot
cohort (as ``bench_outcomes_coverage.py`` does), and compares ``D_post`` with the
empirical ``D_true[t, s] = P(modal = s | true = t)``. ``bch_limit_bias`` is the relative
bias of BCH in the large-sample limit (the outcome set to its class mean, no noise) with
``D_post``; with ``D_true`` it is zero by construction.

Run::

    nice python benchmarks/diag_outcomes_calibration.py --n-dyads 20000
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import alliancetraj as at
from alliancetraj.errors import AllianceTrajWarning
from alliancetraj.outcomes.bch import BCH
from alliancetraj.outcomes.solver import error_matrix
from alliancetraj.simulate import DEFAULT_OUTCOME_EFFECTS

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = {"moderate": {}, "hard": {"n_sessions": (6, 8), "noise": 0.45}}
EFFECTS = np.array([DEFAULT_OUTCOME_EFFECTS[c] for c in at.CLASSES])


def one(scenario: str, pilot_seed: list[int], eb_max_dyads: int, n_dyads: int) -> dict:
    opts = SCENARIOS[scenario]
    pilot = at.simulate_cohort(2000, seed=np.random.default_rng(pilot_seed), **opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceTrajWarning)
        hyp = at.classify(pilot.sessions, method="exact", eb_max_dyads=eb_max_dyads,
                          progress=False).hyperparameters
        cohort = at.simulate_cohort(n_dyads, seed=np.random.default_rng([2, 0]), **opts)
        res = at.classify(cohort.sessions, method="exact", hyperparameters=hyp, progress=False)
    P = res.probabilities.to_numpy()
    true = cohort.truth["true_class"].reindex(res.dyads).cat.codes.to_numpy()
    modal = P.argmax(axis=1)
    d_true = np.zeros((4, 4))
    np.add.at(d_true, (true, modal), 1)
    d_true /= d_true.sum(axis=1, keepdims=True)
    d_post = error_matrix(P, modal)
    beta = BCH(P, EFFECTS[true], np.empty((len(true), 0)), "gaussian", 0, None).fit()
    rel = (beta[1:4] - EFFECTS[1:]) / np.abs(EFFECTS[1:])
    row = {"scenario": scenario, "pilot_seed": str(pilot_seed), "eb_max_dyads": eb_max_dyads,
           "amplitude_var": hyp["amplitude_var"], "depth_var": hyp["depth_var"],
           "accuracy": float(np.mean(modal == true)),
           "max_abs_D_post_minus_D_true": float(np.abs(d_post - d_true).max()),
           "D_post_u_to_linear": d_post[1, 0], "D_true_u_to_linear": d_true[1, 0]}
    for k, c in enumerate(at.CLASSES):
        row[f"mean_p_{c}"] = float(P[:, k].mean())
        row[f"share_true_{c}"] = float(np.mean(true == k))
    for c, r in zip(at.CLASSES[1:], rel, strict=True):
        row[f"bch_limit_bias_{c}"] = float(r)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-dyads", type=int, default=20000)
    args = parser.parse_args(argv)
    rows = []
    # the study's pilot seeds ([20240601, scenario index, 10**6]) and one other
    for s_idx, scenario in enumerate(SCENARIOS):
        for pilot_seed in ([20240601, s_idx, 10**6], [3, 10**6]):
            for eb in (400, 2000):
                rows.append(one(scenario, pilot_seed, eb, args.n_dyads))
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    command = "nice python benchmarks/diag_outcomes_calibration.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "outcomes_calibration.csv", index=False)
    cols = ["scenario", "pilot_seed", "eb_max_dyads", "amplitude_var", "accuracy",
            "D_post_u_to_linear", "D_true_u_to_linear", "mean_p_linear", "share_true_linear",
            "mean_p_u_shaped", "share_true_u_shaped", *[f"bch_limit_bias_{c}"
                                                        for c in at.CLASSES[1:]]]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        text = table[cols].round(3).to_string(index=False)
    (RESULTS / "outcomes_calibration.md").write_text(
        f"# Exact-engine calibration as BCH sees it\n\nCommand: `{command.strip()}`\n\n"
        f"```\n{text}\n```\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
